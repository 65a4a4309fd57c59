// Host-side tests of the TensorRT plugin library: creators, attributes, type/format support,
// output shapes and shape checks. Runs without a GPU and without libnvinfer (only headers).
#include "plugin/adflAttentionPlugin.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

using namespace nvinfer1;

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
extern "C" char const* adfl_op_contract_json();

static int gFailures = 0;
static int gChecks = 0;
#define CHECK(cond)                                                                   \
    do {                                                                              \
        ++gChecks;                                                                    \
        if (!(cond)) {                                                                \
            ++gFailures;                                                              \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

namespace {

Dims dims(std::initializer_list<int64_t> values) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(values.size());
    int i = 0;
    for (auto v : values) d.d[i++] = v;
    return d;
}

DynamicPluginTensorDesc desc(Dims d, DataType type, TensorFormat format = TensorFormat::kLINEAR) {
    DynamicPluginTensorDesc t{};
    t.desc.dims = d;
    t.desc.type = type;
    t.desc.format = format;
    t.min = t.opt = t.max = d;
    return t;
}

// Valid input shapes of each op for a [2, 64, 6, 4] feature map.
std::vector<Dims> validInputs(adfl::OpKind kind) {
    switch (kind) {
        case adfl::OpKind::kSpatialAttention:
            return {dims({2, 8, 6, 4}), dims({2, 8, 6, 4}), dims({2, 64, 6, 4}), dims({2, 64, 6, 4}), dims({1})};
        case adfl::OpKind::kChannelAttention: return {dims({2, 64, 6, 4}), dims({1})};
        case adfl::OpKind::kHyperAttention: return {dims({2, 1, 6, 4}), dims({2, 1, 6, 4}), dims({2, 1, 6, 4})};
        case adfl::OpKind::kSpatialGate: return {dims({2, 1, 6, 4}), dims({2, 64, 6, 4})};
        case adfl::OpKind::kChannelGate: return {dims({2, 64}), dims({2, 64, 6, 4})};
        case adfl::OpKind::kHyperGate: return {dims({2, 64, 6, 4})};
    }
    return {};
}

struct FakeExprBuilder : IExprBuilder {
    ~FakeExprBuilder() noexcept override = default;
};

void testCreators() {
    int32_t n = 0;
    auto* const* list = getCreators(n);
    CHECK(n == 6);
    char const* names[] = {"SpatialAttention", "ChannelAttention", "HyperAttention", "SpatialGate", "ChannelGate", "HyperGate"};
    for (int i = 0; i < n; ++i) {
        CHECK(std::strcmp(list[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") == 0);
        auto* creator = static_cast<IPluginCreatorV3One*>(list[i]);
        CHECK(std::strcmp(creator->getPluginName(), names[i]) == 0);
        CHECK(std::strcmp(creator->getPluginNamespace(), "adfl") == 0);
        CHECK(std::strcmp(creator->getPluginVersion(), "1") == 0);
        CHECK(creator->getFieldNames()->nbFields == 0);
    }
}

void testPlugin(adfl::OpSpec const& spec) {
    adfl::AdflAttentionPluginCreator creator(spec.kind);
    std::unique_ptr<IPluginV3> plugin(creator.createPlugin("node", nullptr, TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    CHECK(core && build && runtime);
    CHECK(std::strcmp(core->getPluginName(), spec.name) == 0);

    // serialisation round trip: no fields, and a plugin rebuilt from them is the same op
    PluginFieldCollection const* fields = runtime->getFieldsToSerialize();
    CHECK(fields->nbFields == 0);
    std::unique_ptr<IPluginV3> rebuilt(creator.createPlugin("node", fields, TensorRTPhase::kRUNTIME));
    CHECK(rebuilt && std::strcmp(static_cast<IPluginV3OneCore*>(rebuilt->getCapabilityInterface(PluginCapabilityType::kCORE))->getPluginName(), spec.name) == 0);
    std::unique_ptr<IPluginV3> copy(plugin->clone());
    CHECK(copy && static_cast<adfl::AdflAttentionPlugin*>(copy.get())->spec().kind == spec.kind);
    PluginField unknown("epsilon", nullptr, PluginFieldType::kFLOAT32, 1);
    PluginFieldCollection foreign{1, &unknown};
    CHECK(creator.createPlugin("node", &foreign, TensorRTPhase::kBUILD) == nullptr);

    // output type follows the mirrored input
    std::vector<DataType> types(spec.nbInputs, DataType::kHALF);
    DataType out{};
    CHECK(build->getOutputDataTypes(&out, 1, types.data(), spec.nbInputs) == 0 && out == DataType::kHALF);
    CHECK(build->getNbOutputs() == 1);

    // output shape is the mirrored input's
    std::vector<DimsExprs> exprs(spec.nbInputs);
    static int tokens[64];
    for (int i = 0; i < spec.nbInputs; ++i) {
        exprs[i].nbDims = 4;
        for (int d = 0; d < 4; ++d) exprs[i].d[d] = reinterpret_cast<IDimensionExpr const*>(&tokens[i * 4 + d]);
    }
    DimsExprs outShape{};
    FakeExprBuilder builder;
    CHECK(build->getOutputShapes(exprs.data(), spec.nbInputs, nullptr, 0, &outShape, 1, builder) == 0);
    CHECK(outShape.nbDims == 4 && outShape.d[2] == exprs[spec.outputLike].d[2]);

    // type/format combinations: all fp32 or all fp16, linear; nothing else
    auto shapes = validInputs(spec.kind);
    for (DataType t : {DataType::kFLOAT, DataType::kHALF}) {
        std::vector<DynamicPluginTensorDesc> io;
        for (auto const& d : shapes) io.push_back(desc(d, t));
        io.push_back(desc(shapes[spec.outputLike], t));
        for (int pos = 0; pos <= spec.nbInputs; ++pos) CHECK(build->supportsFormatCombination(pos, io.data(), spec.nbInputs, 1));
        CHECK(build->configurePlugin(io.data(), spec.nbInputs, io.data() + spec.nbInputs, 1) == 0);
        io.back().desc.type = t == DataType::kFLOAT ? DataType::kHALF : DataType::kFLOAT;
        CHECK(!build->supportsFormatCombination(spec.nbInputs, io.data(), spec.nbInputs, 1));
        io.back().desc.type = t;
        io[0].desc.format = TensorFormat::kCHW32;
        CHECK(!build->supportsFormatCombination(0, io.data(), spec.nbInputs, 1));
        io[0].desc.format = TensorFormat::kLINEAR;
        io[0].desc.type = DataType::kINT8;
        CHECK(!build->supportsFormatCombination(0, io.data(), spec.nbInputs, 1));
    }

    // shape rules
    auto* adflPlugin = static_cast<adfl::AdflAttentionPlugin*>(plugin.get());
    CHECK(adflPlugin->checkShapes(shapes.data(), spec.nbInputs).empty());
    CHECK(!adflPlugin->checkShapes(shapes.data(), spec.nbInputs - 1).empty());
    auto bad = shapes;
    bad[spec.outputLike] = dims({2, 64, 24});
    CHECK(!adflPlugin->checkShapes(bad.data(), spec.nbInputs).empty());
    if (spec.nbInputs > 1) {
        auto wrong = shapes;
        wrong[0].d[wrong[0].nbDims - 1] += 1;  // first input disagrees with the feature map
        if (spec.kind != adfl::OpKind::kChannelAttention) CHECK(!adflPlugin->checkShapes(wrong.data(), spec.nbInputs).empty());
    }

    // scratch memory: only the gates need it, sized from the max profile shape
    std::vector<DynamicPluginTensorDesc> io;
    for (auto const& d : shapes) io.push_back(desc(d, DataType::kFLOAT));
    size_t const ws = build->getWorkspaceSize(io.data(), spec.nbInputs, nullptr, 1);
    bool const gate = spec.kind == adfl::OpKind::kSpatialGate || spec.kind == adfl::OpKind::kChannelGate ||
                      spec.kind == adfl::OpKind::kHyperGate;
    CHECK(gate ? ws == 2 * 2 * sizeof(float) : ws == 0);
}

// A dynamic tensor as TensorRT hands it to configurePlugin: desc.dims has -1 where min != max.
DynamicPluginTensorDesc profile(Dims min, Dims max, DataType type = DataType::kFLOAT) {
    DynamicPluginTensorDesc t{};
    t.min = t.opt = min;
    t.max = max;
    t.desc.dims = min;
    for (int i = 0; i < min.nbDims; ++i)
        if (min.d[i] != max.d[i]) t.desc.dims.d[i] = -1;
    t.desc.type = type;
    t.desc.format = TensorFormat::kLINEAR;
    return t;
}

int configure(adfl::OpKind kind, std::vector<DynamicPluginTensorDesc> io) {
    adfl::AdflAttentionPlugin plugin(kind);
    io.push_back(io[plugin.spec().outputLike]);  // the output mirrors that input
    int32_t const n = plugin.spec().nbInputs;
    return plugin.configurePlugin(io.data(), n, io.data() + n, 1);
}

// Build-time checks look at the optimisation profile, not at the -1 wildcards of desc.dims.
void testDynamicProfiles() {
    using adfl::OpKind;
    DynamicPluginTensorDesc const alpha = profile(dims({1}), dims({1}));
    // ChannelAttention: H*W up to 1536 > 1024 rejected at build; up to 1024 accepted
    CHECK(configure(OpKind::kChannelAttention, {profile(dims({1, 64, 1, 1}), dims({8, 64, 48, 32})), alpha}) != 0);
    CHECK(configure(OpKind::kChannelAttention, {profile(dims({1, 64, 1, 1}), dims({8, 64, 32, 32})), alpha}) == 0);
    // SpatialAttention: C up to 4096 > 2048 rejected; up to 2048 accepted; C' 1025 rejected
    auto spatial = [&](int64_t cMax, int64_t reducedMax) {
        return configure(OpKind::kSpatialAttention,
                         {profile(dims({1, 8, 6, 4}), dims({4, reducedMax, 6, 4})),
                          profile(dims({1, 8, 6, 4}), dims({4, reducedMax, 6, 4})),
                          profile(dims({1, 64, 6, 4}), dims({4, cMax, 6, 4})),
                          profile(dims({1, 64, 6, 4}), dims({4, cMax, 6, 4})), alpha});
    };
    CHECK(spatial(4096, 512) != 0);
    CHECK(spatial(2048, 512) == 0);
    CHECK(spatial(2048, 1025) != 0);
    CHECK(spatial(2048, 1024) == 0);
    // a dynamic batch (1..32) is accepted for every op; inputs whose profiles disagree are not
    for (auto const& spec : adfl::allOpSpecs()) {
        std::vector<DynamicPluginTensorDesc> io;
        for (Dims d : validInputs(spec.kind)) {
            Dims lo = d, hi = d;
            if (d.nbDims > 1) lo.d[0] = 1, hi.d[0] = 32;
            io.push_back(profile(lo, hi));
        }
        CHECK(configure(spec.kind, io) == 0);
        if (spec.nbInputs > 1 && spec.kind != OpKind::kChannelAttention) {
            io[0].max.d[0] = 16;  // first input's batch stops at 16, the feature map's at 32
            io[0].desc.dims.d[0] = -1;
            CHECK(configure(spec.kind, io) != 0);
        }
    }
    // wildcards never reach the shape rules as if they were sizes
    adfl::AdflAttentionPlugin plugin(OpKind::kChannelAttention);
    std::vector<Dims> wild{dims({-1, 64, -1, -1}), dims({1})};
    CHECK(plugin.checkShapes(wild.data(), 2).find("unknown") != std::string::npos);
}

// Every limit of the contract table is enforced exactly at its value.
void testLimits() {
    adfl::AdflAttentionPlugin channel(adfl::OpKind::kChannelAttention);
    std::vector<Dims> at{dims({1, 16, 32, 32}), dims({1})}, over{dims({1, 16, 41, 25}), dims({1})};  // 1024, 1025
    CHECK(channel.checkShapes(at.data(), 2).empty());
    CHECK(channel.checkShapes(over.data(), 2).find("positions 1025 exceeds the kernel limit 1024") != std::string::npos);
    adfl::AdflAttentionPlugin spatial(adfl::OpKind::kSpatialAttention);
    auto sp = [](int64_t c, int64_t r) {
        return std::vector<Dims>{dims({1, r, 2, 2}), dims({1, r, 2, 2}), dims({1, c, 2, 2}), dims({1, c, 2, 2}), dims({1})};
    };
    CHECK(spatial.checkShapes(sp(2048, 1024).data(), 5).empty());
    CHECK(spatial.checkShapes(sp(2049, 8).data(), 5).find("channels 2049") != std::string::npos);
    CHECK(spatial.checkShapes(sp(64, 1025).data(), 5).find("reduced_channels 1025") != std::string::npos);
    // 32-bit indexing: 2^31 elements refused
    adfl::AdflAttentionPlugin gate(adfl::OpKind::kHyperGate);
    std::vector<Dims> huge{dims({2, 1024, 1024, 1024})};
    CHECK(!gate.checkShapes(huge.data(), 1).empty());
}

// The contract the library reports: fp32 and fp16 only (no bfloat16), one creator per op.
void testContractDescription() {
    for (auto const& spec : adfl::allOpSpecs()) {
        auto const types = adfl::supportedTypes(spec.kind);
        CHECK(types.size() == 2 && types[0] == DataType::kFLOAT && types[1] == DataType::kHALF);
    }
    std::string const json = adfl_op_contract_json();
    CHECK(json.front() == '{' && json.back() == '}');
    CHECK(json.find("bfloat16") == std::string::npos);
    int32_t n = 0;
    auto* const* list = getCreators(n);
    for (int i = 0; i < n; ++i) {
        auto* creator = static_cast<IPluginCreatorV3One*>(list[i]);
        CHECK(json.find(std::string("\"op_type\": \"") + creator->getPluginName() + "\"") != std::string::npos);
    }
}

void testAlphaShape() {
    adfl::AdflAttentionPlugin plugin(adfl::OpKind::kChannelAttention);
    auto shapes = validInputs(adfl::OpKind::kChannelAttention);
    shapes[1] = dims({2});
    CHECK(plugin.checkShapes(shapes.data(), 2).find("alpha") != std::string::npos);
}

}  // namespace

int main() {
    testCreators();
    for (auto const& spec : adfl::allOpSpecs()) testPlugin(spec);
    testAlphaShape();
    testDynamicProfiles();
    testLimits();
    testContractDescription();
    std::printf("%d passed, %d failed\n", gChecks - gFailures, gFailures);
    return gFailures == 0 ? 0 : 1;
}
