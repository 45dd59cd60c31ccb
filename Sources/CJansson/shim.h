// Typed wrappers for jansson's function-like macros, which Swift cannot call directly.
#include <jansson.h>

static inline json_type sluice_json_typeof(const json_t *j) { return json_typeof(j); }
static inline json_t *sluice_json_incref(json_t *j) { return json_incref(j); }
static inline void sluice_json_decref(json_t *j) { json_decref(j); }

/// Encoder flags: compact, any top-level value, reals with 15 significant digits: every number a
/// client wrote with up to 15 digits comes out exactly as written (0.7, not 0.69999999999999996).
static const size_t sluice_json_encode_flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15);
static const size_t sluice_json_decode_flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
/// The same with object keys sorted: a canonical form, for hashing.
static const size_t sluice_json_encode_sorted_flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15) | JSON_SORT_KEYS;

/// Request bodies also refuse duplicate keys: a gateway that checks one `"model"` and forwards
/// bytes holding two would let the provider's parser pick the other.
static const size_t sluice_json_decode_request_flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES;
