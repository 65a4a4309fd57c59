// TensorRT IPluginV3 wrapper of the ADFL fused attention kernels: one plugin class, six ops,
// each described by an OpSpec taken from the contract table (common/opContract.h: name, inputs,
// which input the output mirrors, shape limits). Plugin name = ONNX op type (SpatialAttention,
// ...), namespace "adfl", version "1": what TensorRT's ONNX parser looks up for a com.adfl node
// carrying plugin_namespace="adfl" (model.trt.onnx). The ops have no attributes (the learned
// alpha is an input), so nothing needs serialising.
#pragma once

#include "NvInferRuntime.h"
#include "common/opContract.h"

#include <string>
#include <vector>

namespace adfl {

struct OpSpec {
    OpKind kind;
    char const* name;
    int nbInputs;
    int outputLike;  // the output has this input's shape and type
};

constexpr char const* kPluginNamespace = contract::kPluginNamespace;
constexpr char const* kPluginVersion = contract::kPluginVersion;

OpSpec const& opSpec(OpKind kind);
std::vector<OpSpec> const& allOpSpecs();

// The I/O types the plugin accepts for `kind`, asked of supportsFormatCombination (every tensor
// of one type, linear); used by the contract description and its tests.
std::vector<nvinfer1::DataType> supportedTypes(OpKind kind);

// The contract as the plugin library sees it, JSON (what adfl_op_contract_json returns).
std::string contractJson();

class AdflAttentionPlugin : public nvinfer1::IPluginV3,
                            public nvinfer1::IPluginV3OneCore,
                            public nvinfer1::IPluginV3OneBuild,
                            public nvinfer1::IPluginV3OneRuntime {
public:
    explicit AdflAttentionPlugin(OpKind kind) : mSpec(opSpec(kind)) {}
    ~AdflAttentionPlugin() override = default;

    OpSpec const& spec() const noexcept { return mSpec; }

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override { return mSpec.name; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                               nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                            int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                            nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                   int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override { return 1; }
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                            nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                    void const* const* inputs, void* const* outputs, void* workspace,
                    cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    // Shape rules shared by configurePlugin and onShapeChange; empty string = valid. Dimensions
    // must be known (>= 0): configurePlugin checks the profile's min and max, never desc.dims.
    std::string checkShapes(nvinfer1::Dims const* inputs, int32_t nbInputs) const;

private:
    OpSpec mSpec;
    nvinfer1::PluginFieldCollection mFields{0, nullptr};
};

class AdflAttentionPluginCreator : public nvinfer1::IPluginCreatorV3One {
public:
    explicit AdflAttentionPluginCreator(OpKind kind) : mSpec(opSpec(kind)) {}
    nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                      nvinfer1::TensorRTPhase phase) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &mFields; }
    char const* getPluginName() const noexcept override { return mSpec.name; }
    char const* getPluginVersion() const noexcept override { return kPluginVersion; }
    char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

private:
    OpSpec mSpec;
    nvinfer1::PluginFieldCollection mFields{0, nullptr};
};

// Report through TensorRT's logger when one was provided (setLoggerFinder), else stderr.
void logError(std::string const& message) noexcept;
void logWarning(std::string const& message) noexcept;
void setLogger(nvinfer1::ILogger* logger) noexcept;

}  // namespace adfl
