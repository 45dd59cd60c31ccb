#include "json_budget.h"
#include <jansson.h>
#include <stdlib.h>

static _Thread_local size_t budget_left;
static _Thread_local size_t budget_given;
static _Thread_local int budget_active;
static _Thread_local int budget_exceeded;

static void *budgeted_malloc(size_t size) {
    if (budget_active) {
        if (size > budget_left) {
            budget_exceeded = 1;
            return NULL;
        }
        budget_left -= size;
    }
    return malloc(size);
}

void sluice_json_install_budget(void) { json_set_alloc_funcs(budgeted_malloc, free); }

void sluice_json_budget_begin(size_t bytes) {
    budget_left = bytes;
    budget_given = bytes;
    budget_exceeded = 0;
    budget_active = 1;
}

int sluice_json_budget_end(void) {
    budget_active = 0;
    return budget_exceeded;
}

size_t sluice_json_budget_spent(void) { return budget_given - budget_left; }
