// Entry points TensorRT looks for when it loads this library (IPluginRegistry::loadLibrary,
// `trtexec --dynamicPlugins=libadfl_plugins.so`, tensorrt.get_plugin_registry().load_library):
//   getCreators(nbCreators) -> the IPluginV3 creators;  setLoggerFinder(finder) -> TensorRT's logger.
// Plus adfl_op_contract_json(): the op contract as this library implements it (JSON), for
// tests/kernels/test_op_contract.py. The library links no libnvinfer, so it loads (ctypes,
// dlopen) on a machine without TensorRT or a GPU.
// With -DADFL_SELF_REGISTER=ON the creators also register themselves when the library is
// dlopen'ed by a process that already has TensorRT loaded (DeepStream's custom-lib-path).
#include "adflAttentionPlugin.h"

#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace {

std::vector<IPluginCreatorInterface*>& creators() {
    static std::vector<std::unique_ptr<adfl::AdflAttentionPluginCreator>> owned;
    static std::vector<IPluginCreatorInterface*> list;
    if (list.empty()) {
        for (auto const& spec : adfl::allOpSpecs()) {
            owned.emplace_back(new adfl::AdflAttentionPluginCreator(spec.kind));
            list.push_back(owned.back().get());
        }
    }
    return list;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void setLoggerFinder(ILoggerFinder* finder) {
    adfl::setLogger(finder ? finder->findLogger() : nullptr);
}

// NUL-terminated JSON, owned by the library; never null.
__attribute__((visibility("default"))) char const* adfl_op_contract_json() {
    static std::string const json = [] {
        try {
            return adfl::contractJson();
        } catch (...) {
            return std::string("{}");
        }
    }();
    return json.c_str();
}

__attribute__((visibility("default"))) IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    auto& list = creators();
    nbCreators = static_cast<int32_t>(list.size());
    return list.data();
}

}  // extern "C"

#ifdef ADFL_SELF_REGISTER
namespace {
struct SelfRegistration {
    SelfRegistration() {
        for (auto* creator : creators()) getPluginRegistry()->registerCreator(*creator, adfl::kPluginNamespace);
    }
} const gSelfRegistration;
}  // namespace
#endif
