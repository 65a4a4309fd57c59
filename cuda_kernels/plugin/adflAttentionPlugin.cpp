#include "adflAttentionPlugin.h"

#include "hyper_attention/hyperAttentionKernel.h"
#include "row_attention/rowAttentionKernel.h"
#include "softmax_gate/softmaxGateKernel.h"

#include <cuda_fp16.h>

#include <cstdio>
#include <exception>
#include <sstream>

using namespace nvinfer1;

namespace adfl {
namespace {

ILogger* gLogger = nullptr;

int64_t product(Dims const& d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; ++i) p *= d.d[i];
    return p;
}

bool fits32(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

}  // namespace

void setLogger(ILogger* logger) noexcept { gLogger = logger; }

void logError(std::string const& message) noexcept {
    if (gLogger) {
        gLogger->log(ILogger::Severity::kERROR, message.c_str());
    } else {
        std::fprintf(stderr, "[adfl plugins] %s\n", message.c_str());
    }
}

std::vector<OpSpec> const& allOpSpecs() {
    static std::vector<OpSpec> const specs{
        {OpKind::kSpatialAttention, "SpatialAttention", 5, 3},
        {OpKind::kChannelAttention, "ChannelAttention", 2, 0},
        {OpKind::kHyperAttention, "HyperAttention", 3, 2},
        {OpKind::kSpatialGate, "SpatialGate", 2, 1},
        {OpKind::kChannelGate, "ChannelGate", 2, 1},
        {OpKind::kHyperGate, "HyperGate", 1, 0},
    };
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
            else if (x.d[1] > kRowAttentionMaxDim || in[0].d[1] > 1024)
                err << "SpatialAttention: C <= " << kRowAttentionMaxDim << " and C' <= 1024 supported";
            break;
        case OpKind::kChannelAttention:
            if (in[1].nbDims != 1 || in[1].d[0] != 1) err << "ChannelAttention: alpha must have shape [1]";
            else if (x.d[2] * x.d[3] > 1024) err << "ChannelAttention: H*W <= 1024 supported";
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
    return err.str();
}

int32_t AdflAttentionPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                             DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    try {
        if (nbOutputs != 1) return -1;
        std::vector<Dims> dims;
        for (int32_t i = 0; i < nbInputs; ++i) dims.push_back(in[i].desc.dims);
        // -1 (dynamic) dimensions pass the equality checks only where they are dynamic alike
        std::string const problem = checkShapes(dims.data(), nbInputs);
        if (!problem.empty()) {
            logError(problem);
            return -1;
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
        Dims const& x = inputDesc[mSpec.outputLike].dims;
        if (!fits32(product(x, 0, 4))) {
            logError(std::string(mSpec.name) + ": tensor too large for 32-bit indexing");
            return -1;
        }
        cudaError_t const status = inputDesc[0].type == DataType::kHALF
                                       ? dispatch<__half>(mSpec.kind, inputDesc, inputs, outputs[0], workspace, stream)
                                       : dispatch<float>(mSpec.kind, inputDesc, inputs, outputs[0], workspace, stream);
        if (status != cudaSuccess) {
            logError(std::string(mSpec.name) + ": kernel launch failed: " + cudaGetErrorString(status));
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

}  // namespace adfl
