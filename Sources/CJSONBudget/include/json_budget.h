// A memory budget for one jansson parse on the calling thread: what a request body's tree may
// cost is bounded by what jansson may allocate while parsing it (a 10 MB body of `[{},{},…]`
// grows to ~900 MB). Only allocations made between `begin` and `end` on the same thread count;
// frees are not credited back, so the budget bounds the work done as well as the memory kept.
#pragma once
#include <stddef.h>

/// Routes jansson's allocations through the budget check (malloc and free underneath). Once.
void sluice_json_install_budget(void);
void sluice_json_budget_begin(size_t bytes);
/// Ends the budget; non-zero when an allocation was refused for it.
int sluice_json_budget_end(void);
/// What the last budgeted parse on this thread allocated, in bytes (its estimate is checked against it).
size_t sluice_json_budget_spent(void);
