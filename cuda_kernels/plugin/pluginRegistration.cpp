// Entry points TensorRT looks for when it loads this library (IPluginRegistry::loadLibrary,
// `trtexec --dynamicPlugins=libadfl_plugins.so`, tensorrt.get_plugin_registry().load_library):
//   getCreators(nbCreators) -> the IPluginV3 creators;  setLoggerFinder(finder) -> TensorRT's logger.
// With -DADFL_SELF_REGISTER=ON the creators also register themselves when the library is
// dlopen'ed by a process that already has TensorRT loaded (DeepStream's custom-lib-path).
#include "adflAttentionPlugin.h"

#include <memory>
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
