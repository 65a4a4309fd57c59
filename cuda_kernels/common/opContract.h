// The attention-op contract on the C++ side: one table that the TensorRT plugin (names, arity,
// output, shape limits), the kernel launchers (limits) and the exported C description
// (adfl_op_contract_json, see plugin/pluginRegistration.cpp) all read. Its Python twin is
// adfl_deploy/model/attention_ops.py; tests/kernels/test_op_contract.py loads the built library
// and checks that the two agree. Plain C++17: no CUDA or TensorRT types, usable from .cpp and .cu.
#pragma once

#include <cstdint>

namespace adfl {

enum class OpKind : int { kSpatialAttention, kChannelAttention, kHyperAttention, kSpatialGate, kChannelGate, kHyperGate };

namespace contract {

constexpr char const* kDomain = "com.adfl";  // ONNX domain of the nodes
constexpr int kOpVersion = 1;                 // ONNX op (domain) version
constexpr char const* kPluginNamespace = "adfl";
constexpr char const* kPluginVersion = "1";
constexpr char const* kOutputName = "y";

// Kernel limits. A row-attention warp keeps a query row in registers as 32 lanes x up to 32
// values and a value row as 32 lanes x up to 64 values (rowAttentionKernel.cu checks its
// dispatch table against these at compile time); every kernel indexes with 32-bit ints.
constexpr int kRowMaxQueryDim = 32 * 32;
constexpr int kRowMaxValueDim = 32 * 64;
constexpr int64_t kMaxElements = 0x7fffffff;  // per tensor, batch included

// A limit: the product of dims [dimBegin, dimEnd) of input `input` must not exceed `maximum`.
struct ShapeLimit {
    char const* name;
    int input;
    int dimBegin;
    int dimEnd;
    int64_t maximum;
};

constexpr int kMaxInputs = 5;
constexpr int kMaxLimits = 2;

struct OpContract {
    OpKind kind;
    char const* name;    // torch op adfl::<name>
    char const* opType;  // ONNX op type in kDomain = TensorRT plugin name
    int nbInputs;
    char const* inputs[kMaxInputs];
    int outputLike;  // the output has this input's shape and type
    int nbLimits;
    ShapeLimit limits[kMaxLimits];
};

// In OpKind order.
constexpr OpContract kOps[] = {
    {OpKind::kSpatialAttention, "spatial_attention", "SpatialAttention", 5, {"q", "k", "v", "x", "alpha"}, 3, 2,
     {{"channels", 3, 1, 2, kRowMaxValueDim}, {"reduced_channels", 0, 1, 2, kRowMaxQueryDim}}},
    {OpKind::kChannelAttention, "channel_attention", "ChannelAttention", 2, {"x", "alpha"}, 0, 1,
     {{"positions", 0, 2, 4, kRowMaxQueryDim}, {}}},
    {OpKind::kHyperAttention, "hyper_attention", "HyperAttention", 3, {"q", "k", "v"}, 2, 0, {}},
    {OpKind::kSpatialGate, "spatial_gate", "SpatialGate", 2, {"logits", "x"}, 1, 0, {}},
    {OpKind::kChannelGate, "channel_gate", "ChannelGate", 2, {"logits", "x"}, 1, 0, {}},
    {OpKind::kHyperGate, "hyper_gate", "HyperGate", 1, {"x"}, 0, 0, {}},
};
constexpr int kNbOps = static_cast<int>(sizeof(kOps) / sizeof(kOps[0]));

constexpr OpContract const& op(OpKind kind) { return kOps[static_cast<int>(kind)]; }

constexpr bool tableInKindOrder() {
    for (int i = 0; i < kNbOps; ++i)
        if (static_cast<int>(kOps[i].kind) != i) return false;
    return true;
}
static_assert(tableInKindOrder(), "kOps must list the ops in OpKind order");

}  // namespace contract
}  // namespace adfl
