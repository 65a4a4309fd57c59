#include "adflAttentionPlugin.h"

#include "hyper_attention/hyperAttentionKernel.h"
#include "row_attention/rowAttentionKernel.h"
#include "softmax_gate/softmaxGateKernel.h"
#include "common/launchErrors.h"

#include <cuda_fp16.h>

#include <cstdio>
#include <exception>
#include <sstream>

using namespace nvinfer1;

namespace adfl {

using contract::OpContract;
namespace {

ILogger* gLogger = nullptr;

int64_t product(Dims const& d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; ++i) p *= d.d[i];
    return p;
}

}  // namespace

void setLogger(ILogger* logger) noexcept { gLogger = logger; }

namespace {

void logAs(ILogger::Severity severity, std::string const& message) noexcept {
    if (gLogger) {
        gLogger->log(severity, message.c_str());
    } else {
        std::fprintf(stderr, "[adfl plugins] %s\n", message.c_str());
    }
}

}  // namespace

void logError(std::string const& message) noexcept { logAs(ILogger::Severity::kERROR, message); }
void logWarning(std::string const& message) noexcept { logAs(ILogger::Severity::kWARNING, message); }

std::vector<OpSpec> const& allOpSpecs() {
    static std::vector<OpSpec> const specs = [] {
        std::vector<OpSpec> list;
        for (auto const& op : contract::kOps) list.push_back({op.kind, op.opType, op.nbInputs, op.outputLike});
        return list;
    }();
    return specs;
}

OpSpec const& opSpec(OpKind kind) { return allOpSpecs().at(static_cast<size_t>(kind)); }

IPluginCapability* AdflAttentionPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept {
    switch (type) {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* AdflAttentionPlugin::clone() noexcept {
    try {
        return new AdflAttentionPlugin(mSpec.kind);
    } catch (std::exception const& e) {
        logError(std::string(mSpec.name) + ": clone failed: " + e.what());
        return nullptr;
    }
}

std::string AdflAttentionPlugin::checkShapes(Dims const* in, int32_t nbInputs) const {
    std::ostringstream err;
    if (nbInputs != mSpec.nbInputs) {
        err << mSpec.name << " expects " << mSpec.nbInputs << " inputs, got " << nbInputs;
        return err.str();
    }
    for (int32_t i = 0; i < nbInputs; ++i) {
        for (int32_t d = 0; d < in[i].nbDims; ++d) {
            if (in[i].d[d] < 0) {
                err << mSpec.name << ": input " << contract::op(mSpec.kind).inputs[i] << " has an unknown dimension";
                return err.str();
            }
        }
    }
    auto const& x = in[mSpec.outputLike];
    if (x.nbDims != 4) {
        err << mSpec.name << ": feature input must be 4-D NCHW, got " << x.nbDims << "-D";
        return err.str();
    }
    auto sameNHW = [&](Dims const& d) {
        return d.nbDims == 4 && d.d[0] == x.d[0] && d.d[2] == x.d[2] && d.d[3] == x.d[3];
    };
    switch (mSpec.kind) {
        case OpKind::kSpatialAttention:
            if (!sameNHW(in[0]) || !sameNHW(in[1]) || !sameNHW(in[2]) || in[0].d[1] != in[1].d[1] || in[2].d[1] != x.d[1])
                err << "SpatialAttention: q, k must be [B, C', H, W] and v, x [B, C, H, W]";
            else if (in[4].nbDims != 1 || in[4].d[0] != 1)
                err << "SpatialAttention: alpha must have shape [1]";
            break;
        case OpKind::kChannelAttention:
            if (in[1].nbDims != 1 || in[1].d[0] != 1) err << "ChannelAttention: alpha must have shape [1]";
            break;
        case OpKind::kHyperAttention:
            if (!sameNHW(in[0]) || !sameNHW(in[1]) || in[0].d[1] != x.d[1] || in[1].d[1] != x.d[1])
                err << "HyperAttention: q, k, v must all be [B, C', H, W]";
            break;
        case OpKind::kSpatialGate:
            if (!sameNHW(in[0]) || in[0].d[1] != 1) err << "SpatialGate: logits must be [B, 1, H, W]";
            break;
        case OpKind::kChannelGate:
            if (in[0].nbDims != 2 || in[0].d[0] != x.d[0] || in[0].d[1] != x.d[1])
                err << "ChannelGate: logits must be [B, C]";
            break;
        case OpKind::kHyperGate: break;
    }
    if (!err.str().empty()) return err.str();
    // the kernels' limits, from the contract table
    OpContract const& c = contract::op(mSpec.kind);
    for (int l = 0; l < c.nbLimits; ++l) {
        contract::ShapeLimit const& limit = c.limits[l];
        int64_t const value = product(in[limit.input], limit.dimBegin, limit.dimEnd);
        if (value > limit.maximum) {
            err << mSpec.name << ": " << limit.name << " " << value << " exceeds the kernel limit " << limit.maximum;
            return err.str();
        }
    }
    for (int32_t i = 0; i < nbInputs; ++i) {
        if (product(in[i], 0, in[i].nbDims) > contract::kMaxElements) {
            err << mSpec.name << ": input " << c.inputs[i] << " has more than " << contract::kMaxElements
                << " elements (32-bit indexing)";
            return err.str();
        }
    }
    return err.str();
}

int32_t AdflAttentionPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                             DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    try {
        if (nbOutputs != 1) return -1;
        // desc.dims holds -1 for every dynamic dimension: check the profile's extremes instead.
        // Limits are monotone in each dimension, so min and max valid means the profile is; the
        // equalities between inputs are checked again on the real shapes in onShapeChange.
        for (char const* which : {"min", "max"}) {
            bool const isMin = which[1] == 'i';
            std::vector<Dims> dims;
            for (int32_t i = 0; i < nbInputs; ++i) dims.push_back(isMin ? in[i].min : in[i].max);
            std::string const problem = checkShapes(dims.data(), nbInputs);
            if (!problem.empty()) {
                logError(problem + " (optimisation profile " + which + ")");
                return -1;
            }
        }
        return 0;
    } catch (std::exception const& e) {
        logError(std::string(mSpec.name) + ": configurePlugin failed: " + e.what());
        return -1;
    }
}

int32_t AdflAttentionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                                int32_t nbInputs) const noexcept {
    if (nbOutputs != 1 || nbInputs != mSpec.nbInputs) return -1;
    outputTypes[0] = inputTypes[mSpec.outputLike];
    return 0;
}

int32_t AdflAttentionPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const*, int32_t,
                                             DimsExprs* outputs, int32_t nbOutputs, IExprBuilder&) noexcept {
    if (nbOutputs != 1 || nbInputs != mSpec.nbInputs) return -1;
    outputs[0] = inputs[mSpec.outputLike];
    return 0;
}

bool AdflAttentionPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                    int32_t nbInputs, int32_t nbOutputs) noexcept {
    if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
    auto const& desc = inOut[pos].desc;
    bool const floatType = desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    bool const linear = desc.format == TensorFormat::kLINEAR;
    // every tensor, alpha included, shares the first input's type (fp32 in, fp32 out; fp16 likewise)
    return floatType && linear && (pos == 0 || desc.type == inOut[0].desc.type);
}

size_t AdflAttentionPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                             DynamicPluginTensorDesc const*, int32_t) const noexcept {
    if (nbInputs != mSpec.nbInputs) return 0;
    Dims const& x = inputs[mSpec.outputLike].max;
    switch (mSpec.kind) {
        case OpKind::kSpatialGate: return softmaxGateWorkspaceSize(x.d[0], static_cast<int>(x.d[2] * x.d[3]));
        case OpKind::kChannelGate: return softmaxGateWorkspaceSize(x.d[0], static_cast<int>(x.d[1]));
        case OpKind::kHyperGate: return softmaxGateWorkspaceSize(x.d[0], static_cast<int>(product(x, 1, 4)));
        default: return 0;
    }
}

int32_t AdflAttentionPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const*,
                                           int32_t nbOutputs) noexcept {
    try {
        std::vector<Dims> dims;
        for (int32_t i = 0; i < nbInputs; ++i) dims.push_back(in[i].dims);
        std::string const problem = nbOutputs == 1 ? checkShapes(dims.data(), nbInputs) : "one output expected";
        if (!problem.empty()) {
            logError(problem);
            return -1;
        }
        return 0;
    } catch (std::exception const& e) {
        logError(std::string(mSpec.name) + ": onShapeChange failed: " + e.what());
        return -1;
    }
}

namespace {

template <typename T>
cudaError_t dispatch(OpKind kind, PluginTensorDesc const* in, void const* const* inputs, void* output,
                     void* workspace, cudaStream_t stream) {
    auto const* i0 = static_cast<T const*>(inputs[0]);
    auto input = [&](int i) { return static_cast<T const*>(inputs[i]); };
    auto* y = static_cast<T*>(output);
    switch (kind) {
        case OpKind::kSpatialAttention: {
            Dims const& x = in[3].dims;
            return launchSpatialAttention<T>(i0, input(1), input(2), input(3), input(4), y, x.d[0], x.d[1],
                                             in[0].dims.d[1], x.d[2] * x.d[3], stream);
        }
        case OpKind::kChannelAttention: {
            Dims const& x = in[0].dims;
            return launchChannelAttention<T>(i0, input(1), y, x.d[0], x.d[1], x.d[2] * x.d[3], stream);
        }
        case OpKind::kHyperAttention: {
            Dims const& v = in[2].dims;
            return launchHyperAttention<T>(i0, input(1), input(2), y, v.d[0], v.d[1] * v.d[2] * v.d[3], stream);
        }
        case OpKind::kSpatialGate:
        case OpKind::kChannelGate: {
            Dims const& x = in[1].dims;
            GateKind const gate = kind == OpKind::kSpatialGate ? GateKind::kSpatial : GateKind::kChannel;
            return launchSoftmaxGate<T>(gate, i0, input(1), y, x.d[0], x.d[1], x.d[2] * x.d[3], workspace, stream);
        }
        case OpKind::kHyperGate: {
            Dims const& x = in[0].dims;
            return launchSoftmaxGate<T>(GateKind::kHyper, nullptr, i0, y, x.d[0], x.d[1], x.d[2] * x.d[3], workspace,
                                        stream);
        }
    }
    return cudaErrorInvalidValue;
}

}  // namespace

int32_t AdflAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const*,
                                     void const* const* inputs, void* const* outputs, void* workspace,
                                     cudaStream_t stream) noexcept {
    try {
        PendingError const pending = takePendingError();
        if (pending.error != cudaSuccess) {
            std::string const what = std::string(mSpec.name) + ": a CUDA error from earlier work was pending (" +
                                     cudaGetErrorString(pending.error) + ")";
            if (pending.sticky) {
                logError(what + "; the CUDA context is unusable, not launching");
                return -1;
            }
            logWarning(what + "; cleared, not this plugin's");
        }
        cudaError_t const status = inputDesc[0].type == DataType::kHALF
                                       ? dispatch<__half>(mSpec.kind, inputDesc, inputs, outputs[0], workspace, stream)
                                       : dispatch<float>(mSpec.kind, inputDesc, inputs, outputs[0], workspace, stream);
        if (status != cudaSuccess) {
            logError(std::string(mSpec.name) + ": kernel launch failed: " + cudaGetErrorString(status) +
                     (status == cudaErrorInvalidValue ? " (shape outside the kernel's limits)" : ""));
            return -1;
        }
        return 0;
    } catch (std::exception const& e) {
        logError(std::string(mSpec.name) + ": enqueue failed: " + e.what());
        return -1;
    }
}

IPluginV3* AdflAttentionPlugin::attachToContext(IPluginResourceContext*) noexcept { return clone(); }

PluginFieldCollection const* AdflAttentionPlugin::getFieldsToSerialize() noexcept { return &mFields; }

IPluginV3* AdflAttentionPluginCreator::createPlugin(char const*, PluginFieldCollection const* fc,
                                                    TensorRTPhase) noexcept {
    try {
        if (fc != nullptr && fc->nbFields != 0) {
            // the ops have no attributes; anything else is a foreign or newer node
            for (int32_t i = 0; i < fc->nbFields; ++i) {
                std::string const name = fc->fields[i].name ? fc->fields[i].name : "";
                if (name != "plugin_namespace" && name != "plugin_version") {
                    logError(std::string(mSpec.name) + ": unknown attribute '" + name + "'");
                    return nullptr;
                }
            }
        }
        return new AdflAttentionPlugin(mSpec.kind);
    } catch (std::exception const& e) {
        logError(std::string(mSpec.name) + ": createPlugin failed: " + e.what());
        return nullptr;
    }
}

std::vector<DataType> supportedTypes(OpKind kind) {
    AdflAttentionPlugin plugin(kind);
    int32_t const nbInputs = plugin.spec().nbInputs;
    std::vector<DataType> accepted;
    for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT8, DataType::kINT32,
                       DataType::kBOOL, DataType::kUINT8, DataType::kFP8, DataType::kINT64}) {
        std::vector<DynamicPluginTensorDesc> io(nbInputs + 1);
        for (auto& d : io) {
            d.desc.type = t;
            d.desc.format = TensorFormat::kLINEAR;
        }
        bool all = true;
        for (int32_t pos = 0; pos <= nbInputs; ++pos) all = all && plugin.supportsFormatCombination(pos, io.data(), nbInputs, 1);
        if (all) accepted.push_back(t);
    }
    return accepted;
}

namespace {

char const* typeName(DataType t) {
    switch (t) {
        case DataType::kFLOAT: return "float32";
        case DataType::kHALF: return "float16";
        case DataType::kBF16: return "bfloat16";
        case DataType::kINT8: return "int8";
        case DataType::kINT32: return "int32";
        case DataType::kBOOL: return "bool";
        case DataType::kUINT8: return "uint8";
        case DataType::kFP8: return "float8";
        case DataType::kINT64: return "int64";
        default: return "other";
    }
}

std::string quoted(char const* text) { return std::string("\"") + text + "\""; }  // names are plain ASCII

}  // namespace

std::string contractJson() {
    std::ostringstream j;
    j << "{" << quoted("domain") << ": " << quoted(contract::kDomain) << ", " << quoted("op_version") << ": "
      << contract::kOpVersion << ", " << quoted("plugin_namespace") << ": " << quoted(kPluginNamespace) << ", "
      << quoted("plugin_version") << ": " << quoted(kPluginVersion) << ", " << quoted("max_elements") << ": "
      << contract::kMaxElements << ", " << quoted("ops") << ": [";
    bool firstOp = true;
    for (auto const& spec : allOpSpecs()) {
        OpContract const& c = contract::op(spec.kind);
        AdflAttentionPlugin plugin(spec.kind);  // what TensorRT would be handed
        j << (firstOp ? "" : ", ") << "{" << quoted("name") << ": " << quoted(c.name) << ", " << quoted("op_type") << ": "
          << quoted(plugin.getPluginName()) << ", " << quoted("plugin_namespace") << ": "
          << quoted(plugin.getPluginNamespace()) << ", " << quoted("plugin_version") << ": "
          << quoted(plugin.getPluginVersion()) << ", " << quoted("nb_outputs") << ": " << plugin.getNbOutputs() << ", "
          << quoted("inputs") << ": [";
        firstOp = false;
        for (int i = 0; i < spec.nbInputs; ++i) j << (i ? ", " : "") << quoted(c.inputs[i]);
        j << "], " << quoted("output") << ": " << quoted(contract::kOutputName) << ", " << quoted("output_like") << ": "
          << quoted(c.inputs[spec.outputLike]) << ", " << quoted("dtypes") << ": [";
        auto const types = supportedTypes(spec.kind);
        for (size_t i = 0; i < types.size(); ++i) j << (i ? ", " : "") << quoted(typeName(types[i]));
        j << "], " << quoted("limits") << ": [";
        for (int l = 0; l < c.nbLimits; ++l) {
            auto const& limit = c.limits[l];
            j << (l ? ", " : "") << "{" << quoted("name") << ": " << quoted(limit.name) << ", " << quoted("input") << ": "
              << quoted(c.inputs[limit.input]) << ", " << quoted("dims") << ": [";
            for (int d = limit.dimBegin; d < limit.dimEnd; ++d) j << (d > limit.dimBegin ? ", " : "") << d;
            j << "], " << quoted("max") << ": " << limit.maximum << "}";
        }
        j << "]}";
    }
    j << "]}";
    return j.str();
}

}  // namespace adfl
