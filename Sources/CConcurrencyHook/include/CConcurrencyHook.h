#ifndef SLUICE_CCONCURRENCYHOOK_H
#define SLUICE_CCONCURRENCYHOOK_H

#include <stdint.h>

/// Where the Swift concurrency runtime looks for a replacement global executor
/// (`swift_task_enqueueGlobal_hook`). NIO finds it with dlsym, which fails when the runtime is
/// linked into the binary (--static-swift-stdlib hides the symbol); the linker finds it always.
void *_Nullable *_Nonnull sluice_concurrency_enqueue_global_hook(void);

/// Runs a job as the global executor runs it: on no serial executor. A job run on an event loop's
/// own serial executor (NIO's `enqueue`) makes every call into a nonisolated async function hop
/// back to the global executor: a new job, dozens per request.
void sluice_run_job_on_global_executor(void *_Nonnull job);

#endif
