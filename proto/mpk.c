/*
 * mpk.c — bounded msgpack reading and writing (see mpk.h for the design).
 */
#include "mpk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- raw scan ------------------------------------------------------------ */

static uint64_t
be_read(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int
mpk_scan(const uint8_t *p, size_t len, unsigned max_depth,
         unsigned *depth_out, const char *what, anc_error *err)
{
	return mpk_scan_objects(p, len, max_depth, UINT64_MAX, depth_out, what,
	                        err);
}

int
mpk_scan_objects(const uint8_t *p, size_t len, unsigned max_depth,
                 uint64_t max_objects, unsigned *depth_out, const char *what,
                 anc_error *err)
{
	/* left[i]: objects still expected in the container at depth i+1. */
	uint64_t left[MPK_MAX_DEPTH + 1];
	uint64_t objects = 0;
	unsigned depth = 0, deepest = 0;
	size_t off = 0;

	if (max_depth > MPK_MAX_DEPTH)
		max_depth = MPK_MAX_DEPTH;
	if (len == 0)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: empty, expected a msgpack map", what);
	for (;;) {
		if (off >= len)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: truncated at byte %zu of %zu", what, off, len);
		uint8_t b = p[off];
		size_t avail = len - off - 1; /* bytes after the type byte */
		if (++objects > max_objects)
			return anc_error_set(err, ANC_ETOOBIG,
			    "%s: more than %llu msgpack values, over the limit "
			    "(each costs the unpacker 16 bytes or more)", what,
			    (unsigned long long)max_objects);
		uint64_t skip = 0;            /* payload bytes after the header */
		uint64_t count = 0;           /* children, for containers */
		unsigned hdr = 0;             /* length-field bytes */
		int container = 0;

		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b <= 0x8f) {
			container = 1;
			count = 2u * (uint64_t)(b & 0x0f);
		} else if (b <= 0x9f) {
			container = 1;
			count = b & 0x0f;
		} else if (b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4: case 0xd9: hdr = 1; break;      /* bin8 str8 */
			case 0xc5: case 0xda: hdr = 2; break;      /* bin16 str16 */
			case 0xc6: case 0xdb: hdr = 4; break;      /* bin32 str32 */
			case 0xc7: hdr = 1; skip = 1; break;       /* ext8 + type */
			case 0xc8: hdr = 2; skip = 1; break;
			case 0xc9: hdr = 4; skip = 1; break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;                /* fixext1 */
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: hdr = 2; container = 1; break;  /* array16 */
			case 0xdd: hdr = 4; container = 1; break;  /* array32 */
			case 0xde: hdr = 2; container = 2; break;  /* map16 */
			case 0xdf: hdr = 4; container = 2; break;  /* map32 */
			default: /* 0xc1 */
				return anc_error_set(err, ANC_EMALFORMED,
				    "%s: invalid msgpack byte 0x%02x at offset %zu",
				    what, b, off);
			}
		}
		if (hdr > avail)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: truncated at byte %zu of %zu", what, off, len);
		if (hdr > 0) {
			uint64_t n = be_read(p + off + 1, hdr);
			if (container == 2)
				count = 2 * n;
			else if (container == 1)
				count = n;
			else
				skip += n;
		}
		avail -= hdr;
		if (skip > avail)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: truncated at byte %zu of %zu", what, off, len);
		off += 1 + hdr + (size_t)skip;

		if (container && count > 0) {
			/* Each child needs one byte at least: a larger count is a
			 * lie, and believing it would make msgpack-c allocate. */
			if (count > len - off)
				return anc_error_set(err, ANC_EMALFORMED,
				    "%s: container at offset %zu claims %llu "
				    "elements, only %zu bytes follow", what,
				    off - 1 - hdr, (unsigned long long)count,
				    len - off);
			if (depth + 1 > max_depth)
				return anc_error_set(err, ANC_ETOOBIG,
				    "%s: nested deeper than %u levels", what,
				    max_depth);
			left[depth++] = count;
			if (depth > deepest)
				deepest = depth;
			continue;
		}
		if (container && depth + 1 > deepest)
			deepest = depth + 1; /* an empty container still nests */
		if (container && depth + 1 > max_depth)
			return anc_error_set(err, ANC_ETOOBIG,
			    "%s: nested deeper than %u levels", what, max_depth);
		/* One object finished: pop every container it completes. */
		while (depth > 0 && --left[depth - 1] == 0)
			depth--;
		if (depth == 0)
			break;
	}
	if (off != len)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: %zu trailing bytes after the msgpack object", what,
		    len - off);
	if (depth_out != NULL)
		*depth_out = deepest;
	return ANC_OK;
}

/* ---- reading the object tree -------------------------------------------- */

const char *
mpk_type_name(const msgpack_object *o)
{
	if (o == NULL)
		return "nothing";
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return "float";
	case MSGPACK_OBJECT_STR: return "str";
	case MSGPACK_OBJECT_BIN: return "bin";
	case MSGPACK_OBJECT_ARRAY: return "array";
	case MSGPACK_OBJECT_MAP: return "map";
	case MSGPACK_OBJECT_EXT: return "ext";
	}
	return "unknown";
}

/*
 * Paths are built for every field a decoder looks at, before it knows
 * whether an error will need one: a query reply of 10 hits builds about 70.
 * snprintf made that a third of a reply's decoding time (issue 6 profile),
 * so the paths are put together by hand, with snprintf's result: the
 * same text, cut at MPK_PATH_MAX - 1 bytes, always terminated.
 */
static size_t
path_put(char *out, size_t at, const char *s, size_t n)
{
	if (at + n > MPK_PATH_MAX - 1)
		n = MPK_PATH_MAX - 1 - at;
	memcpy(out + at, s, n);
	return at + n;
}

void
mpk_path(char out[MPK_PATH_MAX], const char *parent, const char *key)
{
	size_t at = 0;
	if (parent != NULL && parent[0] != '\0') {
		at = path_put(out, at, parent, strlen(parent));
		at = path_put(out, at, ".", 1);
	}
	at = path_put(out, at, key, strlen(key));
	out[at] = '\0';
}

void
mpk_path_idx(char out[MPK_PATH_MAX], const char *parent, uint32_t i)
{
	char num[16], *p = num + sizeof num;
	size_t at;
	*--p = ']';
	do {
		*--p = (char)('0' + i % 10);
		i /= 10;
	} while (i != 0);
	*--p = '[';
	at = parent != NULL ? path_put(out, 0, parent, strlen(parent)) : 0;
	at = path_put(out, at, p, (size_t)(num + sizeof num - p));
	out[at] = '\0';
}

int
mpk_type_error(const mpk_dec *d, const char *path, const char *want,
               const msgpack_object *o)
{
	return anc_error_set(d->err, ANC_EMALFORMED, "%s: expected %s, got %s",
	    path, want, mpk_type_name(o));
}

int
mpk_find(const mpk_dec *d, const msgpack_object *map, const char *path,
         const char *key, const msgpack_object **out)
{
	size_t klen = strlen(key);
	const msgpack_object *found = NULL;

	*out = NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->key.via.str.size != klen ||
		    memcmp(kv->key.via.str.ptr, key, klen) != 0)
			continue;
		if (found != NULL) {
			char p[MPK_PATH_MAX];
			mpk_path(p, path, key);
			return anc_error_set(d->err, ANC_EMALFORMED,
			    "%s: duplicate key", p);
		}
		found = &kv->val;
	}
	*out = found;
	return ANC_OK;
}

/* Common prologue of the getters: find the field, handle absence. Returns
 * ANC_OK with *o NULL for an absent optional field. */
static int
field(const mpk_dec *d, const msgpack_object *map, const char *parent,
      const char *key, int required, char path[MPK_PATH_MAX],
      const msgpack_object **o, int *present)
{
	int rv;

	mpk_path(path, parent, key);
	if ((rv = mpk_find(d, map, parent, key, o)) != ANC_OK)
		return rv;
	if (*o != NULL && (*o)->type == MSGPACK_OBJECT_NIL && !required)
		*o = NULL;
	if (present != NULL)
		*present = *o != NULL;
	if (*o == NULL && required)
		return anc_error_set(d->err, ANC_EMALFORMED,
		    "%s: required field missing", path);
	return ANC_OK;
}

int
mpk_str_dup(const mpk_dec *d, const msgpack_object *o, const char *path,
            size_t maxlen, int too_big_code, const char **out)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return mpk_type_error(d, path, "str", o);
	uint32_t n = o->via.str.size;
	if (n > maxlen)
		return anc_error_set(d->err, too_big_code,
		    "%s: %u bytes, longer than the limit of %zu", path, n,
		    maxlen);
	if (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL)
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: embedded NUL byte at offset %td", path,
		    (const char *)memchr(o->via.str.ptr, '\0', n) -
		        o->via.str.ptr);
	char *s = pa_strndup(d->arena, o->via.str.ptr, n);
	if (s == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "%s: out of memory copying %u bytes", path, n);
	*out = s;
	return ANC_OK;
}

int
mpk_get_str(const mpk_dec *d, const msgpack_object *map, const char *parent,
            const char *key, int required, size_t maxlen, int too_big_code,
            const char **out, int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	return mpk_str_dup(d, o, path, maxlen, too_big_code, out);
}

int
mpk_get_strbuf(const mpk_dec *d, const msgpack_object *map,
               const char *parent, const char *key, int required, char *out,
               size_t cap, int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	if (o->type != MSGPACK_OBJECT_STR)
		return mpk_type_error(d, path, "str", o);
	uint32_t n = o->via.str.size;
	if (n >= cap)
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: %u bytes, longer than the limit of %zu", path, n,
		    cap - 1);
	if (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL)
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: embedded NUL byte at offset %td", path,
		    (const char *)memchr(o->via.str.ptr, '\0', n) -
		        o->via.str.ptr);
	memcpy(out, o->via.str.ptr, n);
	out[n] = '\0';
	return ANC_OK;
}

int
mpk_get_uint(const mpk_dec *d, const msgpack_object *map, const char *parent,
             const char *key, int required, uint64_t max, uint64_t *out,
             int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	/* The field's own range (k 1..max_k, ...) is checked by its caller;
	 * max here is only the type's, so it is named only when it is the
	 * field's too. */
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return max >= UINT32_MAX
		    ? anc_error_set(d->err, ANC_EINVAL,
		          "%s: %lld is negative, expected a non-negative integer",
		          path, (long long)o->via.i64)
		    : anc_error_set(d->err, ANC_EINVAL,
		          "%s: %lld is negative, expected 0..%llu", path,
		          (long long)o->via.i64, (unsigned long long)max);
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return mpk_type_error(d, path, "non-negative int", o);
	if (o->via.u64 > max)
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: %llu is out of range, expected 0..%llu", path,
		    (unsigned long long)o->via.u64, (unsigned long long)max);
	*out = o->via.u64;
	return ANC_OK;
}

int
mpk_get_bool(const mpk_dec *d, const msgpack_object *map, const char *parent,
             const char *key, int required, int *out, int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return mpk_type_error(d, path, "bool", o);
	*out = o->via.boolean ? 1 : 0;
	return ANC_OK;
}

int
mpk_get_float(const mpk_dec *d, const msgpack_object *map, const char *parent,
              const char *key, int required, float *out, int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	if (o->type != MSGPACK_OBJECT_FLOAT32 &&
	    o->type != MSGPACK_OBJECT_FLOAT64)
		return mpk_type_error(d, path, "float", o);
	*out = (float)o->via.f64;
	return ANC_OK;
}

int
mpk_get_map(const mpk_dec *d, const msgpack_object *map, const char *parent,
            const char *key, int required, const msgpack_object **out,
            int *present)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, required, path, &o, present)) !=
	        ANC_OK || o == NULL)
		return rv;
	if (o->type != MSGPACK_OBJECT_MAP)
		return mpk_type_error(d, path, "map", o);
	*out = o;
	return ANC_OK;
}

int
mpk_get_array(const mpk_dec *d, const msgpack_object *map, const char *parent,
              const char *key, uint32_t min, uint32_t max,
              const char *limit_name,
              const msgpack_object_array **out)
{
	char path[MPK_PATH_MAX];
	const msgpack_object *o;
	int rv;

	if ((rv = field(d, map, parent, key, 1, path, &o, NULL)) != ANC_OK)
		return rv;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return mpk_type_error(d, path, "array", o);
	if (o->via.array.size < min)
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: empty, expected %u..%u elements", path, min, max);
	if (o->via.array.size > max)
		return anc_error_set(d->err, ANC_ETOOBIG,
		    "%s: %u elements, over the limit %s=%u", path,
		    o->via.array.size, limit_name, max);
	*out = &o->via.array;
	return ANC_OK;
}

int
mpk_vec_check(const mpk_dec *d, const msgpack_object *o, const char *path,
              uint32_t *dim)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return mpk_type_error(d, path, "bin of float32", o);
	uint32_t n = o->via.bin.size;
	if (n == 0 || n % 4 != 0)
		return anc_error_set(d->err, ANC_EMALFORMED,
		    "%s: bin of %u bytes, expected a non-zero multiple of 4 "
		    "(little-endian float32)", path, n);
	*dim = n / 4;
	return ANC_OK;
}

void
mpk_vec_copy(float *dst, const msgpack_object *o, uint32_t dim)
{
	/* Assemble each value from its bytes: correct on any host byte order
	 * and never reads a float through an unaligned pointer. */
	const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
	for (uint32_t i = 0; i < dim; i++, p += 4) {
		uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		memcpy(&dst[i], &u, sizeof(u));
	}
}

/* Depth of an already unpacked object (containers count 1 each). */
static unsigned
obj_depth(const msgpack_object *o, unsigned limit)
{
	unsigned best = 0;
	if (limit == 0)
		return 1; /* deeper than anyone asked: stop descending */
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			unsigned dd = obj_depth(&o->via.array.ptr[i], limit - 1);
			if (dd > best)
				best = dd;
		}
		return best + 1;
	}
	if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			unsigned dk = obj_depth(&o->via.map.ptr[i].key, limit - 1);
			unsigned dv = obj_depth(&o->via.map.ptr[i].val, limit - 1);
			if (dk > best)
				best = dk;
			if (dv > best)
				best = dv;
		}
		return best + 1;
	}
	return 0;
}

/* Packer callbacks for re-serialising metadata in two passes: count the
 * size (refusing to go past max_meta), then write into an exact-size arena
 * block, so a batch of small maps never reserves max_meta bytes each. */
typedef struct fixed_out {
	uint8_t *p; /* NULL: count only */
	size_t len, cap;
} fixed_out;

static int
fixed_write(void *data, const char *buf, size_t len)
{
	fixed_out *f = data;
	if (len > f->cap - f->len)
		return -1;
	if (f->p != NULL)
		memcpy(f->p + f->len, buf, len);
	f->len += len;
	return 0;
}

int
mpk_meta_dup(const mpk_dec *d, const msgpack_object *o, const char *path,
             const uint8_t **out, uint32_t *len)
{
	msgpack_packer pk;
	fixed_out f = { NULL, 0, d->lim->max_meta };

	*out = NULL;
	*len = 0;
	if (o->type == MSGPACK_OBJECT_NIL)
		return ANC_OK;
	if (o->type != MSGPACK_OBJECT_MAP)
		return mpk_type_error(d, path, "map", o);
	/* The whole message was depth-checked by mpk_scan (<= MPK_MAX_DEPTH),
	 * so this recursion is bounded. */
	if (obj_depth(o, MPK_META_MAX_DEPTH + 1) > MPK_META_MAX_DEPTH)
		return anc_error_set(d->err, ANC_ETOOBIG,
		    "%s: nested deeper than %u levels", path,
		    MPK_META_MAX_DEPTH);
	msgpack_packer_init(&pk, &f, fixed_write);
	if (msgpack_pack_object(&pk, *o) != 0)
		return anc_error_set(d->err, ANC_ETOOBIG,
		    "%s: over the limit max_meta=%u bytes", path,
		    d->lim->max_meta);
	f.cap = f.len;
	f.len = 0;
	if ((f.p = pa_alloc(d->arena, f.cap)) == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "%s: out of memory (%zu bytes)", path, f.cap);
	if (msgpack_pack_object(&pk, *o) != 0 || f.len != f.cap)
		return anc_error_set(d->err, ANC_EINTERNAL,
		    "%s: metadata size changed between two packings", path);
	*out = f.p;
	*len = (uint32_t)f.len;
	return ANC_OK;
}

int
mpk_meta_check(const uint8_t *p, size_t len, const char *path,
               anc_error *err)
{
	int rv;
	if (len == 0 || p == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: empty, expected a msgpack map", path);
	if ((rv = mpk_scan(p, len, MPK_META_MAX_DEPTH, NULL, path, err)) !=
	    ANC_OK) {
		/* Keep the scanner's message; to an encoder every refusal is
		 * a bad argument. */
		if (err != NULL)
			err->code = ANC_EINVAL;
		return ANC_EINVAL;
	}
	if (!((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf))
		return anc_error_set(err, ANC_EINVAL,
		    "%s: expected a msgpack map", path);
	return ANC_OK;
}

/* ---- writing ------------------------------------------------------------ */

int
mpk_buf_reserve(anc_buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return ANC_OK;
	if (extra > SIZE_MAX / 2 - b->len)
		return ANC_ENOMEM;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < extra)
		ncap *= 2;
	uint8_t *nd = realloc(b->data, ncap);
	if (nd == NULL)
		return ANC_ENOMEM;
	b->data = nd;
	b->cap = ncap;
	return ANC_OK;
}

static int
w_cb(void *data, const char *p, size_t n)
{
	mpk_w *w = data;
	if (w->oom)
		return -1;
	if (mpk_buf_reserve(w->buf, n) != ANC_OK) {
		w->oom = 1;
		return -1;
	}
	memcpy(w->buf->data + w->buf->len, p, n);
	w->buf->len += n;
	return 0;
}

void
mpk_w_init(mpk_w *w, anc_buf *buf)
{
	w->buf = buf;
	w->oom = 0;
	msgpack_packer_init(&w->pk, w, w_cb);
}

/* The packer's own return values carry nothing w->oom does not: each
 * writer ignores them and the encoder checks w->oom once at the end. */
void
mpk_w_raw(mpk_w *w, const void *p, size_t n)
{
	if (n > 0)
		(void)w_cb(w, p, n);
}

void
mpk_w_strn(mpk_w *w, const char *s, size_t n)
{
	(void)msgpack_pack_str(&w->pk, n);
	(void)msgpack_pack_str_body(&w->pk, s, n);
}

void
mpk_w_str(mpk_w *w, const char *s)
{
	if (s == NULL)
		(void)msgpack_pack_nil(&w->pk);
	else
		mpk_w_strn(w, s, strlen(s));
}

void mpk_w_key(mpk_w *w, const char *key) { mpk_w_str(w, key); }

void
mpk_w_kstr(mpk_w *w, const char *key, const char *s)
{
	mpk_w_key(w, key);
	mpk_w_str(w, s);
}

void
mpk_w_kuint(mpk_w *w, const char *key, uint64_t v)
{
	mpk_w_key(w, key);
	(void)msgpack_pack_uint64(&w->pk, v);
}

void
mpk_w_kint(mpk_w *w, const char *key, int64_t v)
{
	mpk_w_key(w, key);
	(void)msgpack_pack_int64(&w->pk, v);
}

void
mpk_w_kbool(mpk_w *w, const char *key, int v)
{
	mpk_w_key(w, key);
	if (v)
		(void)msgpack_pack_true(&w->pk);
	else
		(void)msgpack_pack_false(&w->pk);
}

void
mpk_w_kfloat(mpk_w *w, const char *key, float v)
{
	mpk_w_key(w, key);
	(void)msgpack_pack_float(&w->pk, v);
}

void mpk_w_map(mpk_w *w, uint32_t n) { (void)msgpack_pack_map(&w->pk, n); }
void mpk_w_array(mpk_w *w, uint32_t n) { (void)msgpack_pack_array(&w->pk, n); }

void
mpk_w_vec(mpk_w *w, const float *v, uint32_t dim)
{
	uint8_t tmp[256];
	size_t n = (size_t)dim * 4, used = 0;

	(void)msgpack_pack_bin(&w->pk, n);
	for (uint32_t i = 0; i < dim; i++) {
		uint32_t u;
		memcpy(&u, &v[i], sizeof(u));
		tmp[used++] = (uint8_t)u;
		tmp[used++] = (uint8_t)(u >> 8);
		tmp[used++] = (uint8_t)(u >> 16);
		tmp[used++] = (uint8_t)(u >> 24);
		if (used == sizeof(tmp)) {
			mpk_w_raw(w, tmp, used);
			used = 0;
		}
	}
	mpk_w_raw(w, tmp, used);
}
