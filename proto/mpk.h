/*
 * mpk.h — private to proto/: bounded msgpack reading and writing on top of
 * msgpack-c.
 *
 * Design note
 * -----------
 * msgpack-c's unpacker trusts the counts in container headers: an array
 * header claiming 2^32 elements makes it allocate 2^32 objects before it
 * notices the buffer ends, and nesting costs it a stack frame per level.
 * So no untrusted byte reaches msgpack_unpack_next before mpk_scan has
 * walked the raw buffer once, iteratively and without allocating, and
 * proved that it holds exactly one complete object, that every container
 * count fits in the bytes that remain (each element takes at least one
 * byte), and that nesting stays within a bound. After that, the unpacker
 * allocates at most a small multiple of the message size.
 *
 * The getters then read the unpacked object tree field by field, naming the
 * field path in every error ("body.records[3].vector: expected bin, got
 * str"). Strings and bins are copied into the message's arena: msgpack-c's
 * str objects point into the caller's buffer and are not NUL-terminated.
 *
 * The writer wraps msgpack_packer with a callback that appends to an
 * anc_buf and remembers the first allocation failure, so encoders write
 * straight through and check once at the end.
 */
#ifndef ANC_PROTO_MPK_H
#define ANC_PROTO_MPK_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "anc_error.h"
#include "anc_proto.h"
#include "arena.h"

/* Containers nested deeper than this are refused by mpk_scan (msgpack-c's
 * own parser stops at MSGPACK_EMBED_STACK_SIZE = 32). */
#define MPK_MAX_DEPTH 24
/* Metadata maps: depth of the map itself counts as 1. */
#define MPK_META_MAX_DEPTH 8

#define MPK_PATH_MAX 160

/* Check that p[0..len) holds one complete msgpack object and nothing after
 * it (see the design note). what names the thing in messages ("message",
 * "body.records[2].meta"). On success *depth_out (may be NULL) is the
 * deepest container nesting seen (0 for a scalar).
 * ANC_EMALFORMED: truncated, reserved byte 0xc1, a count larger than the
 * bytes left, trailing bytes. ANC_ETOOBIG: nesting deeper than max_depth. */
int mpk_scan(const uint8_t *p, size_t len, unsigned max_depth,
             unsigned *depth_out, const char *what, anc_error *err);
/* mpk_scan, and ANC_ETOOBIG past max_objects values (containers and
 * scalars alike): msgpack-c allocates an object of 16 bytes or more for
 * each, so a message of one-byte values would cost its unpacking 16 times
 * its size or more. */
int mpk_scan_objects(const uint8_t *p, size_t len, unsigned max_depth,
                     uint64_t max_objects, unsigned *depth_out,
                     const char *what, anc_error *err);
/* Values in one request (x 16 bytes: 64 MiB). The largest ordinary
 * request, 10000 upsert records with small metadata, has a few hundred
 * thousand. Responses are bounded by max_hits instead. */
#define MPK_REQ_OBJECTS_MAX ANC_REQ_VALUES_MAX

/* "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext". */
const char *mpk_type_name(const msgpack_object *o);

/* Decoding context: where allocations go, the limits, the error. */
typedef struct mpk_dec {
	pa_arena *arena;
	const anc_limits *lim;
	anc_error *err;
} mpk_dec;

/* Build "parent.key" (or "key" when parent is "") into out. */
void mpk_path(char out[MPK_PATH_MAX], const char *parent, const char *key);
/* Build "parent[i]" into out. */
void mpk_path_idx(char out[MPK_PATH_MAX], const char *parent, uint32_t i);

/* Look key up in map (an object of type map, path names it). Sets *out to
 * the value or NULL when absent. ANC_EMALFORMED when the key appears twice
 * (a reader in another language would silently keep one of them). Keys
 * that are not strings are ignored like any unknown key. */
int mpk_find(const mpk_dec *d, const msgpack_object *map, const char *path,
             const char *key, const msgpack_object **out);

/* ANC_EMALFORMED "<path>: expected <want>, got <type>". */
int mpk_type_error(const mpk_dec *d, const char *path, const char *want,
                   const msgpack_object *o);

/* Field getters. Each looks `key` up in `map` (named `parent`), fails with
 * ANC_EMALFORMED "... required field missing" when required and absent,
 * leaves *out untouched and sets *present (may be NULL) to 0 when optional
 * and absent, and checks the type. A nil value counts as absent for
 * optional fields only. */

/* String copied into the arena. Embedded NUL: ANC_EINVAL. More than maxlen
 * bytes: too_big_code (ANC_EINVAL for the fixed bounds of anc_types.h,
 * ANC_ETOOBIG for anc_limits). */
int mpk_get_str(const mpk_dec *d, const msgpack_object *map,
                const char *parent, const char *key, int required,
                size_t maxlen, int too_big_code, const char **out,
                int *present);

/* String copied into a fixed array of cap bytes (including the NUL). */
int mpk_get_strbuf(const mpk_dec *d, const msgpack_object *map,
                   const char *parent, const char *key, int required,
                   char *out, size_t cap, int *present);

/* Check that o (named path) is a str of at most maxlen bytes without NUL
 * and copy it into the arena. */
int mpk_str_dup(const mpk_dec *d, const msgpack_object *o, const char *path,
                size_t maxlen, int too_big_code, const char **out);

/* Non-negative integer no larger than max (ANC_EINVAL otherwise; a float
 * is ANC_EMALFORMED). */
int mpk_get_uint(const mpk_dec *d, const msgpack_object *map,
                 const char *parent, const char *key, int required,
                 uint64_t max, uint64_t *out, int *present);

int mpk_get_bool(const mpk_dec *d, const msgpack_object *map,
                 const char *parent, const char *key, int required, int *out,
                 int *present);

/* float32 or float64 (narrowed to float). */
int mpk_get_float(const mpk_dec *d, const msgpack_object *map,
                  const char *parent, const char *key, int required,
                  float *out, int *present);

/* A map (borrowed from the tree). */
int mpk_get_map(const mpk_dec *d, const msgpack_object *map,
                const char *parent, const char *key, int required,
                const msgpack_object **out, int *present);

/* A required array of min..max elements (min is 0 or 1); more than max:
 * ANC_ETOOBIG naming limit_name; fewer than min: ANC_EINVAL. */
int mpk_get_array(const mpk_dec *d, const msgpack_object *map,
                  const char *parent, const char *key, uint32_t min,
                  uint32_t max, const char *limit_name,
                  const msgpack_object_array **out);

/* Check that o (named path) is a bin of little-endian float32 (length a
 * non-zero multiple of 4) and return its float count in *dim. */
int mpk_vec_check(const mpk_dec *d, const msgpack_object *o, const char *path,
                  uint32_t *dim);

/* Copy dim little-endian float32 from bin object o into dst (host order). */
void mpk_vec_copy(float *dst, const msgpack_object *o, uint32_t dim);

/* Metadata: o (named path) must be a map nested at most
 * MPK_META_MAX_DEPTH deep; it is re-serialised into the arena (at most
 * max_meta bytes: ANC_ETOOBIG). nil gives *out NULL, *len 0. */
int mpk_meta_dup(const mpk_dec *d, const msgpack_object *o, const char *path,
                 const uint8_t **out, uint32_t *len);

/* ---- writing ------------------------------------------------------------ */

typedef struct mpk_w {
	msgpack_packer pk;
	anc_buf *buf;
	int oom; /* set by the first failed append */
} mpk_w;

void mpk_w_init(mpk_w *w, anc_buf *buf);

/* Append raw bytes (already-encoded msgpack). */
void mpk_w_raw(mpk_w *w, const void *p, size_t n);

void mpk_w_str(mpk_w *w, const char *s);            /* NULL writes nil */
void mpk_w_strn(mpk_w *w, const char *s, size_t n);
void mpk_w_key(mpk_w *w, const char *key);
void mpk_w_kstr(mpk_w *w, const char *key, const char *s);
void mpk_w_kuint(mpk_w *w, const char *key, uint64_t v);
void mpk_w_kint(mpk_w *w, const char *key, int64_t v);
void mpk_w_kbool(mpk_w *w, const char *key, int v);
void mpk_w_kfloat(mpk_w *w, const char *key, float v);
void mpk_w_map(mpk_w *w, uint32_t n);
void mpk_w_array(mpk_w *w, uint32_t n);
/* Vector as bin of little-endian float32. */
void mpk_w_vec(mpk_w *w, const float *v, uint32_t dim);

/* Grow buf to hold at least extra more bytes. ANC_ENOMEM on failure. */
int mpk_buf_reserve(anc_buf *buf, size_t extra);

/* Check raw metadata bytes as the decoder would: one msgpack map, nested at
 * most MPK_META_MAX_DEPTH deep, nothing after it. path names it. */
int mpk_meta_check(const uint8_t *p, size_t len, const char *path,
                   anc_error *err);

#endif /* ANC_PROTO_MPK_H */
