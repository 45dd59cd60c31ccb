#ifndef SLUICE_CCONCURRENCYHOOK_H
#define SLUICE_CCONCURRENCYHOOK_H

/// Where the Swift concurrency runtime looks for a replacement global executor
/// (`swift_task_enqueueGlobal_hook`). NIO finds it with dlsym, which fails when the runtime is
/// linked into the binary (--static-swift-stdlib hides the symbol); the linker finds it always.
void *_Nullable *_Nonnull sluice_concurrency_enqueue_global_hook(void);

#endif
