#include "CConcurrencyHook.h"

extern void *swift_task_enqueueGlobal_hook;

void **sluice_concurrency_enqueue_global_hook(void) {
    return &swift_task_enqueueGlobal_hook;
}

/// The runtime's `SerialExecutorRef`; both fields zero is the generic (global) executor.
typedef struct {
    const void *_Nullable identity;
    uintptr_t implementation;
} sluice_serial_executor_ref;

/// `swift_job_run(Job *, SerialExecutorRef)`, the Swift calling convention.
extern __attribute__((swiftcall)) void swift_job_run(void *_Nonnull job, sluice_serial_executor_ref executor);

void sluice_run_job_on_global_executor(void *_Nonnull job) {
    sluice_serial_executor_ref generic = { 0, 0 };
    swift_job_run(job, generic);
}
