/*
 * anc_types.c — anchors, contract IDs and validation of the data model.
 *
 * The two hashes here are promises to every client in every language: the
 * canonical encodings are written down in anc_types.h and PROTOCOL.md and
 * pinned by test vectors in tests/unit/anchor_test.c and contract_test.c.
 * Changing a byte of them changes every ID ever issued, so don't.
 */
#include "anc_types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>

#include <openssl/evp.h>

/* ---- hashing -------------------------------------------------------------- */

typedef struct {
	EVP_MD_CTX *ctx;
} hasher;

/* OpenSSL 3 looks the algorithm up in its provider tables on every
 * EVP_sha256()-initialised digest (an implicit fetch, ~3% of a bulk
 * load's write CPU): fetch it once for the process. pthread_once makes
 * the first use thread-safe; the EVP_MD is kept until exit on purpose.
 * If the explicit fetch fails, EVP_sha256() (the implicit path) still
 * works, so nothing changes but the speed. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int
hasher_begin(hasher *h)
{
	const EVP_MD *md;

	if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_md == NULL)
		md = EVP_sha256();
	else
		md = sha256_md;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL)
		return ANC_ENOMEM;
	if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
		return ANC_ENOMEM;
	}
	return ANC_OK;
}

static void
hasher_put(hasher *h, const void *p, size_t n)
{
	/* EVP_DigestUpdate on an initialised SHA-256 context only fails on
	 * misuse; a failure surfaces in hasher_end. */
	if (h->ctx != NULL && EVP_DigestUpdate(h->ctx, p, n) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

static void
hasher_put_lp(hasher *h, const char *s)
{
	size_t n = strlen(s);
	uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
	                 (uint8_t)(n >> 8), (uint8_t)n};
	hasher_put(h, be, 4);
	hasher_put(h, s, n);
}

static int
hasher_end(hasher *h, uint8_t md[32])
{
	unsigned int len = 0;
	int rv = ANC_OK;
	if (h->ctx == NULL || EVP_DigestFinal_ex(h->ctx, md, &len) != 1 ||
	    len != 32) {
		memset(md, 0, 32);
		rv = ANC_ENOMEM;
	}
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	return rv;
}

int
anc_sha256(const void *data, size_t len, uint8_t md[32])
{
	hasher h;
	int rv = hasher_begin(&h);
	if (rv != ANC_OK) {
		memset(md, 0, 32);
		return rv;
	}
	hasher_put(&h, data, len);
	return hasher_end(&h, md);
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
anc_hash_hex16(const void *data, size_t len, char out[33])
{
	uint8_t md[32];
	int rv = anc_sha256(data, len, md);
	if (rv != ANC_OK) {
		out[0] = '\0';
		return rv;
	}
	hex(md, 16, out);
	return ANC_OK;
}

/* ---- anchors -------------------------------------------------------------- */

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int
anc_anchor_compute(const char *collection, const char *source,
                   const char *chunk, uint8_t raw[ANC_ANCHOR_RAW])
{
	static const char tag[] = "anchorage.anchor.v1";
	hasher h;
	uint8_t md[32];
	int rv = hasher_begin(&h);
	if (rv != ANC_OK) {
		memset(raw, 0, ANC_ANCHOR_RAW);
		return rv;
	}
	hasher_put(&h, tag, sizeof(tag) - 1);
	hasher_put_lp(&h, collection);
	hasher_put_lp(&h, source);
	hasher_put_lp(&h, chunk);
	rv = hasher_end(&h, md);
	memcpy(raw, md, ANC_ANCHOR_RAW);
	return rv;
}

void
anc_anchor_format(const uint8_t raw[ANC_ANCHOR_RAW], anc_anchor_str out)
{
	/* 128 bits -> 26 groups of 5 bits; the last group holds 3 bits and
	 * two zero bits of padding. */
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < ANC_ANCHOR_RAW; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

int
anc_anchor_parse(const char *s, uint8_t raw[ANC_ANCHOR_RAW], anc_error *err)
{
	if (s == NULL)
		return anc_error_set(err, ANC_EINVAL, "anchor: missing");
	size_t n = strlen(s);
	if (n != ANC_ANCHOR_LEN)
		return anc_error_set(err, ANC_EINVAL,
		    "anchor '%.40s': expected %d base32 characters, got %zu",
		    s, ANC_ANCHOR_LEN, n);
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = strchr(b32, s[i]);
		if (s[i] == '\0' || p == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "anchor '%s': character %zu ('%c', counting from 1) "
			    "is not in the alphabet a-z2-7", s, i + 1, s[i]);
		acc = (acc << 5) | (uint32_t)(p - b32);
		bits += 5;
		if (bits >= 8) {
			raw[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "anchor '%s': non-zero padding bits in the last character", s);
	return ANC_OK;
}

/* ---- names ---------------------------------------------------------------- */

static const char *const metric_names[] = {"l2", "ip", "cosine"};
static const char *const kind_names[] = {"flat", "hnsw", "hnsw_sq8",
                                          "ivf_flat", "ivf_pq"};
static const char *const state_names[] = {"migrating", "default", "retired"};
static const char *const upsert_names[] = {"created", "updated", "unchanged"};
static const char *const anchor_names[] = {"live", "deleted", "unknown"};
static const char *const delete_names[] = {"deleted", "already_deleted",
                                           "unknown"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *
name_of(const char *const *tab, int n, int v)
{
	return (v >= 0 && v < n) ? tab[v] : "unknown";
}

static int
parse_of(const char *const *tab, int n, const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return i;
	return -1;
}

const char *anc_metric_name(anc_metric m) { return name_of(metric_names, NELEM(metric_names), (int)m); }
int anc_metric_parse(const char *s) { return parse_of(metric_names, NELEM(metric_names), s); }
const char *anc_index_kind_name(anc_index_kind k) { return name_of(kind_names, NELEM(kind_names), (int)k); }
int anc_index_kind_parse(const char *s) { return parse_of(kind_names, NELEM(kind_names), s); }
const char *anc_contract_state_name(anc_contract_state s) { return name_of(state_names, NELEM(state_names), (int)s); }
int anc_contract_state_parse(const char *s) { return parse_of(state_names, NELEM(state_names), s); }
const char *anc_upsert_status_name(int s) { return name_of(upsert_names, NELEM(upsert_names), s); }
const char *anc_anchor_status_name(int s) { return name_of(anchor_names, NELEM(anchor_names), s); }
const char *anc_delete_status_name(int s) { return name_of(delete_names, NELEM(delete_names), s); }

/* ---- contracts ------------------------------------------------------------ */

void
anc_contract_init(anc_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->metric = ANC_METRIC_COSINE;
	c->normalize = 1;
	c->index.kind = ANC_DEFAULT_INDEX_KIND;
}

size_t
anc_utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int
anc_utf8_check(const char *s, size_t n, const char *what, anc_error *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, sl;

	while (i < n) {
		if (p[i] < 0x80) { /* the common case, a byte at a time */
			i++;
			continue;
		}
		if ((sl = anc_utf8_seq(p + i, n - i)) == 0)
			return anc_error_set(err, ANC_EINVAL,
			    "%s: not UTF-8 (byte 0x%02x at offset %zu), "
			    "expected text", what, p[i], i);
		i += sl;
	}
	return ANC_OK;
}

size_t
anc_text_control(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (p[0] < 0x20 || p[0] == 0x7f)
		return 1;
	return n >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}

static int
check_text(const char *field, const char *v, size_t cap, int required,
           anc_error *err)
{
	size_t n = strnlen(v, cap + 1);
	if (n > cap)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.%s: longer than %zu bytes", field, cap);
	if (required && n == 0)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.%s: required, expected a non-empty string", field);
	for (size_t i = 0, sl; i < n; i += sl) {
		const unsigned char *p = (const unsigned char *)v + i;
		if (anc_text_control(p, n - i) != 0)
			return anc_error_set(err, ANC_EINVAL,
			    "contract.%s: control character at byte %zu", field, i);
		/* names are shown on pages and in JSON: text, not bytes */
		if ((sl = anc_utf8_seq(p, n - i)) == 0)
			return anc_error_set(err, ANC_EINVAL,
			    "contract.%s: not UTF-8 (byte 0x%02x at %zu), "
			    "expected text", field, *p, i);
	}
	return ANC_OK;
}

static int
check_range(const char *field, uint32_t v, uint32_t lo, uint32_t hi,
            anc_error *err)
{
	if (v < lo || v > hi)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.%s: %u is out of range, expected %u..%u",
		    field, v, lo, hi);
	return ANC_OK;
}

/* IVF kinds (issue 6): nlist, nprobe, and for ivf_pq the code shape.
 * Fields that belong to HNSW must be 0, so a spec never carries a
 * setting that silently does nothing. */
static int
ivf_validate(anc_contract *c, anc_error *err)
{
	anc_index_spec *x = &c->index;
	int rv;

	if (x->m != 0 || x->ef_construction != 0 || x->ef_search != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.index.%s: %u given, but it is for the hnsw kinds "
		    "(%s has nlist, nprobe%s)",
		    x->m ? "m" : x->ef_construction ? "ef_construction"
		                                   : "ef_search",
		    x->m ? x->m : x->ef_construction ? x->ef_construction
		                                     : x->ef_search,
		    anc_index_kind_name(x->kind),
		    x->kind == ANC_INDEX_IVF_PQ ? ", pq_m, pq_nbits" : "");
	if (x->nlist == 0)
		x->nlist = ANC_DEFAULT_NLIST;
	if (x->nprobe == 0)
		x->nprobe = x->nlist < ANC_DEFAULT_NPROBE ? x->nlist
		                                          : ANC_DEFAULT_NPROBE;
	if ((rv = check_range("index.nlist", x->nlist, 1, ANC_NLIST_MAX, err)) ||
	    (rv = check_range("index.nprobe", x->nprobe, 1, x->nlist, err)))
		return rv;
	if (x->kind == ANC_INDEX_IVF_FLAT) {
		if (x->pq_m != 0 || x->pq_nbits != 0)
			return anc_error_set(err, ANC_EINVAL,
			    "contract.index.%s: %u given, but it is for ivf_pq",
			    x->pq_m ? "pq_m" : "pq_nbits",
			    x->pq_m ? x->pq_m : x->pq_nbits);
		return ANC_OK;
	}
	if (x->pq_nbits == 0)
		x->pq_nbits = ANC_DEFAULT_PQ_NBITS;
	if (x->pq_m == 0) {
		x->pq_m = 1;
		for (uint32_t m = 64; m >= 2; m--)
			if (c->dim % m == 0 && c->dim / m >= 2) {
				x->pq_m = m;
				break;
			}
	}
	if ((rv = check_range("index.pq_m", x->pq_m, 1, ANC_PQ_M_MAX, err)) ||
	    (rv = check_range("index.pq_nbits", x->pq_nbits, ANC_PQ_NBITS_MIN,
	                      ANC_PQ_NBITS_MAX, err)))
		return rv;
	if (c->dim % x->pq_m != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.index.pq_m: %u does not divide dim %u", x->pq_m,
		    c->dim);
	return ANC_OK;
}

int
anc_contract_validate(anc_contract *c, anc_error *err)
{
	int rv;
	if ((rv = check_text("name", c->name, ANC_CNAME_MAX, 1, err)) ||
	    (rv = check_text("model", c->model, ANC_MODEL_MAX, 1, err)) ||
	    (rv = check_text("revision", c->revision, ANC_REVISION_MAX, 1, err)) ||
	    (rv = check_text("preprocess", c->preprocess, ANC_PREPROCESS_MAX, 0,
	                     err)))
		return rv;
	if (strchr(c->name, '@') != NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.name: '%s' must not contain '@' (contracts are "
		    "named name@revision)", c->name);
	if ((rv = check_range("dim", c->dim, 1, ANC_DIM_MAX, err)))
		return rv;
	if ((int)c->metric < 0 || c->metric > ANC_METRIC_COSINE)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.metric: expected l2, ip or cosine");
	if (c->normalize != 0 && c->normalize != 1)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.normalize: expected true or false");
	if ((c->index.kind == ANC_INDEX_FLAT || c->index.kind == ANC_INDEX_HNSW ||
	     c->index.kind == ANC_INDEX_HNSW_SQ8) &&
	    (c->index.nlist | c->index.nprobe | c->index.pq_m |
	     c->index.pq_nbits) != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "contract.index.%s: %u given, but it is for the ivf kinds, "
		    "not %s",
		    c->index.nlist ? "nlist" : c->index.nprobe ? "nprobe"
		    : c->index.pq_m ? "pq_m" : "pq_nbits",
		    c->index.nlist ? c->index.nlist : c->index.nprobe
		    ? c->index.nprobe : c->index.pq_m ? c->index.pq_m
		    : c->index.pq_nbits,
		    anc_index_kind_name(c->index.kind));
	switch (c->index.kind) {
	case ANC_INDEX_FLAT:
		c->index.m = c->index.ef_construction = c->index.ef_search = 0;
		break;
	case ANC_INDEX_IVF_FLAT:
	case ANC_INDEX_IVF_PQ:
		return ivf_validate(c, err);
	case ANC_INDEX_HNSW:
	case ANC_INDEX_HNSW_SQ8:
		if (c->index.m == 0)
			c->index.m = ANC_DEFAULT_HNSW_M;
		if (c->index.ef_construction == 0)
			c->index.ef_construction = ANC_DEFAULT_EF_CONSTRUCTION;
		if (c->index.ef_search == 0)
			c->index.ef_search = ANC_DEFAULT_EF_SEARCH;
		if ((rv = check_range("index.m", c->index.m, 2, ANC_HNSW_M_MAX,
		                      err)) ||
		    (rv = check_range("index.ef_construction",
		                      c->index.ef_construction, 1, ANC_EF_MAX,
		                      err)) ||
		    (rv = check_range("index.ef_search", c->index.ef_search, 1,
		                      ANC_EF_MAX, err)))
			return rv;
		break;
	default:
		return anc_error_set(err, ANC_EINVAL,
		    "contract.index.kind: %d, expected flat, hnsw, hnsw_sq8, "
		    "ivf_flat or ivf_pq", (int)c->index.kind);
	}
	return ANC_OK;
}

void
anc_contract_id(const anc_contract *c, uint8_t raw[ANC_CONTRACT_ID_RAW])
{
	/* Canonical text; fields are bounded, so it always fits. */
	char buf[64 + ANC_CNAME_MAX + ANC_MODEL_MAX + ANC_REVISION_MAX +
	         ANC_PREPROCESS_MAX + 128];
	int n = snprintf(buf, sizeof(buf),
	    "anchorage.contract.v1\nname=%s\nmodel=%s\nrevision=%s\ndim=%u\n"
	    "metric=%s\nnormalize=%s\ndtype=f32\npreprocess=%s\n",
	    c->name, c->model, c->revision, c->dim, anc_metric_name(c->metric),
	    c->normalize ? "true" : "false", c->preprocess);
	uint8_t md[32];
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    anc_sha256(buf, (size_t)n, md) != ANC_OK) {
		/* Unreachable for a validated contract short of OOM in the
		 * hash context; an all-zero ID is then refused by the engine. */
		memset(raw, 0, ANC_CONTRACT_ID_RAW);
		return;
	}
	memcpy(raw, md, ANC_CONTRACT_ID_RAW);
}

void
anc_contract_id_format(const uint8_t raw[ANC_CONTRACT_ID_RAW],
                       anc_contract_id_str out)
{
	hex(raw, ANC_CONTRACT_ID_RAW, out);
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
anc_contract_id_parse(const char *s, uint8_t raw[ANC_CONTRACT_ID_RAW],
                      anc_error *err)
{
	if (s == NULL || strlen(s) != ANC_CONTRACT_ID_LEN)
		return anc_error_set(err, ANC_EINVAL,
		    "contract ID '%.40s': expected %d hex digits",
		    s ? s : "", ANC_CONTRACT_ID_LEN);
	for (int i = 0; i < ANC_CONTRACT_ID_RAW; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return anc_error_set(err, ANC_EINVAL,
			    "contract ID '%s': not a hex digit at %d", s,
			    hi < 0 ? 2 * i : 2 * i + 1);
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	return ANC_OK;
}

/* ---- collections and vectors ---------------------------------------------- */

int
anc_collection_name_check(const char *name, anc_error *err)
{
	if (name == NULL || name[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		    "collection name: required, expected 1..%d characters of "
		    "[A-Za-z0-9_.-]", ANC_COLLECTION_MAX);
	size_t n = strnlen(name, ANC_COLLECTION_MAX + 1);
	if (n > ANC_COLLECTION_MAX)
		return anc_error_set(err, ANC_EINVAL,
		    "collection name '%.40s...': longer than %d characters",
		    name, ANC_COLLECTION_MAX);
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		         (ch >= '0' && ch <= '9') ||
		         (i > 0 && (ch == '_' || ch == '.' || ch == '-'));
		if (!ok)
			return anc_error_set(err, ANC_EINVAL,
			    "collection name '%s': character %zu ('%c') is not "
			    "allowed (counting from 1; expected [A-Za-z0-9], "
			    "then [A-Za-z0-9_.-])",
			    name, i + 1, ch >= 0x20 && ch < 0x7f ? ch : '?');
	}
	return ANC_OK;
}

int
anc_vector_check_finite(const float *v, uint32_t dim, anc_error *err)
{
	return anc_vector_check_norm2(v, dim, NULL, err);
}

int
anc_vector_check_norm2(const float *v, uint32_t dim, double *norm2,
                       anc_error *err)
{
	double s = 0;

	for (uint32_t i = 0; i < dim; i++)
		s += (double)v[i] * (double)v[i];
	if (norm2 != NULL)
		*norm2 = s; /* sqrt(s) is anc_vector_norm(v, dim) exactly */
	if (s <= ANC_VECTOR_NORM2_MAX) /* false for NaN */
		return ANC_OK;
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(v[i]))
			return anc_error_set(err, ANC_ENONFINITE,
			    "component %u is %s", i,
			    isnan(v[i]) ? "NaN" : "Inf");
	return anc_error_set(err, ANC_ENONFINITE,
	    "squared norm %.3g: distances and inner products with it "
	    "overflow float32 (expected at most %.3g, i.e. a norm up to "
	    "%.3g)", s, ANC_VECTOR_NORM2_MAX, sqrt(ANC_VECTOR_NORM2_MAX));
}

double
anc_vector_norm(const float *v, uint32_t dim)
{
	double s = 0;
	for (uint32_t i = 0; i < dim; i++)
		s += (double)v[i] * (double)v[i];
	return sqrt(s);
}
