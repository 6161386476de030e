/*
 * anc_types.h — Anchorage's data model, shared by the engine (index/), the
 * server, the client library and the wire codec (proto/).
 *
 * Design note
 * -----------
 * One set of value types travels the whole path: the client builds an
 * anc_record, proto encodes it, the server decodes it into the same struct and
 * hands it to the engine, whose answers (anc_hit, anc_resolved, ...) proto
 * encodes back. Whoever allocated a value frees it; each API that returns one
 * says which free function to call.
 *
 * Strings are NUL-terminated UTF-8 with no embedded NUL (decoders refuse
 * those). Vectors are float32 in host order, contiguous, 16-byte aligned when
 * allocated by Anchorage.
 *
 * Anchor IDs
 * ----------
 * anchor = first 16 bytes of SHA-256 over the canonical encoding
 *
 *     "anchorage.anchor.v1" || u32be(len(c)) || c || u32be(len(s)) || s
 *                           || u32be(len(k)) || k
 *
 * where c is the collection name, s the source ID and k the chunk key (raw
 * bytes). Printed as 26 characters of RFC 4648 base32, lower case, no
 * padding (alphabet "abcdefghijklmnopqrstuvwxyz234567"). Test vectors live in
 * tests/unit/anchor_test.c; any client can compute the same IDs.
 *
 * Contract IDs
 * ------------
 * id = first 8 bytes of SHA-256 over the canonical text
 *
 *     "anchorage.contract.v1\n" "name=" name "\n" "model=" model "\n"
 *     "revision=" revision "\n" "dim=" decimal "\n" "metric=" l2|ip|cosine
 *     "\n" "normalize=" true|false "\n" "dtype=f32\n" "preprocess="
 *     preprocess "\n"
 *
 * printed as 16 lower-case hex digits. The index settings are deliberately
 * not part of the ID: they say how vectors are searched, not what they mean,
 * so two servers that index the same embedding space differently still agree
 * on its ID.
 */
#ifndef ANC_TYPES_H
#define ANC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "anc_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANC_ANCHOR_RAW 16
#define ANC_ANCHOR_LEN 26 /* printed length, without NUL */
#define ANC_CONTRACT_ID_RAW 8
#define ANC_CONTRACT_ID_LEN 16 /* printed length, without NUL */

/* Bounds on names (bytes, without NUL). */
#define ANC_COLLECTION_MAX 128 /* [A-Za-z0-9_.-], first char alnum */
#define ANC_CNAME_MAX 128      /* contract name */
#define ANC_MODEL_MAX 256
#define ANC_REVISION_MAX 128
#define ANC_PREPROCESS_MAX 512
#define ANC_DIM_MAX 65536
#define ANC_HNSW_M_MAX 256
#define ANC_EF_MAX 8192

typedef char anc_anchor_str[ANC_ANCHOR_LEN + 1];
typedef char anc_contract_id_str[ANC_CONTRACT_ID_LEN + 1];

typedef enum {
	ANC_METRIC_L2 = 0,     /* squared Euclidean distance; lower is closer */
	ANC_METRIC_IP = 1,     /* inner product; higher is closer */
	ANC_METRIC_COSINE = 2  /* vectors normalised, then inner product */
} anc_metric;

typedef enum {
	ANC_INDEX_FLAT = 0,    /* exact search */
	ANC_INDEX_HNSW = 1,    /* approximate: M, efConstruction, efSearch */
	/* The kinds below are trained (issue 6): until the contract holds
	 * ANC_INDEX_TRAIN_MIN(spec) vectors they are served by an exact flat
	 * index (provenance exact 1); then a background thread trains on a
	 * sample of the stored vectors and swaps the trained index in. */
	ANC_INDEX_HNSW_SQ8 = 2, /* HNSW over 8-bit scalar quantised vectors
	                           (faiss "HNSW<M>_SQ8"): M, efConstruction,
	                           efSearch */
	ANC_INDEX_IVF_FLAT = 3, /* inverted lists of raw vectors: nlist, nprobe */
	ANC_INDEX_IVF_PQ = 4    /* inverted lists of product-quantised codes:
	                           nlist, nprobe, pq_m, pq_nbits */
} anc_index_kind;
#define ANC_INDEX_KIND_LAST ANC_INDEX_IVF_PQ

typedef enum {
	ANC_CSTATE_MIGRATING = 0,
	ANC_CSTATE_DEFAULT = 1,
	ANC_CSTATE_RETIRED = 2
} anc_contract_state;

/* Defaults for an index section that is absent or partly given. */
#define ANC_DEFAULT_INDEX_KIND ANC_INDEX_FLAT
#define ANC_DEFAULT_HNSW_M 32
#define ANC_DEFAULT_EF_CONSTRUCTION 200
#define ANC_DEFAULT_EF_SEARCH 64
#define ANC_DEFAULT_NLIST 256
#define ANC_DEFAULT_NPROBE 16
#define ANC_DEFAULT_PQ_NBITS 8
#define ANC_NLIST_MAX 65536
#define ANC_PQ_NBITS_MIN 4
#define ANC_PQ_NBITS_MAX 12
#define ANC_PQ_M_MAX 256
/* Exact re-rank (query option "rerank"): candidates re-scored at most. */
#define ANC_RERANK_MAX 4096
/* Pinned anchors one query may carry (the context assembler's working
 * set, resolved with the search: anc_query_opts.pins). */
#define ANC_QUERY_PINS_MAX 256

typedef struct anc_index_spec {
	anc_index_kind kind;
	uint32_t m;               /* HNSW kinds only: 2..ANC_HNSW_M_MAX */
	uint32_t ef_construction; /* HNSW kinds only: 1..ANC_EF_MAX */
	uint32_t ef_search;       /* HNSW kinds only: 1..ANC_EF_MAX */
	/* IVF kinds only (0 elsewhere; 0 on input means the default): */
	uint32_t nlist;    /* inverted lists, 1..ANC_NLIST_MAX */
	uint32_t nprobe;   /* lists searched by default, 1..nlist */
	uint32_t pq_m;     /* ivf_pq: sub-quantizers, divides dim,
	                      1..ANC_PQ_M_MAX; default: the largest divisor of
	                      dim <= 64 leaving >= 2 dims each (1 if none) */
	uint32_t pq_nbits; /* ivf_pq: bits per code, ANC_PQ_NBITS_MIN..MAX */
} anc_index_spec;

/* Vectors a trained kind needs before it is trained: 39 per centroid
 * (faiss's k-means warns below that), 1024 for hnsw_sq8's value ranges;
 * 0 for flat and hnsw. */
#define ANC_INDEX_TRAIN_MIN(spec)                                            \
	((spec)->kind == ANC_INDEX_HNSW_SQ8 ? 1024u                          \
	 : (spec)->kind == ANC_INDEX_IVF_FLAT ? 39u * (spec)->nlist          \
	 : (spec)->kind == ANC_INDEX_IVF_PQ                                  \
	     ? 39u * ((spec)->nlist > (1u << (spec)->pq_nbits)                \
	                  ? (spec)->nlist : (1u << (spec)->pq_nbits))          \
	     : 0u)

/* An embedding contract. Immutable once registered. */
typedef struct anc_contract {
	char name[ANC_CNAME_MAX + 1];
	char model[ANC_MODEL_MAX + 1];
	char revision[ANC_REVISION_MAX + 1];
	char preprocess[ANC_PREPROCESS_MAX + 1]; /* free text; "" if none */
	uint32_t dim;                            /* 1..ANC_DIM_MAX */
	anc_metric metric;
	int normalize; /* 1: vectors must have unit L2 norm (within
	                  ANC_NORM_TOLERANCE); cosine implies normalise-on-write */
	anc_index_spec index;
} anc_contract;

/* A vector of a normalize:true contract is refused when | ||v|| - 1 | is
 * larger than this. */
#define ANC_NORM_TOLERANCE 0.01f

/* ---- canary probes ------------------------------------------------------
 *
 * A contract may carry canary probes: probe texts with the reference
 * vectors its model gave them at registration. They are not part of the
 * contract ID (like the index spec) but are fixed once registered:
 * re-registering the same contract with other canaries is ANC_ECONFLICT.
 * A check compares the vectors a client's embedder produces today for the
 * same texts with the references: a probe passes when
 * cosine(today, reference) >= ANC_CANARY_THRESHOLD. The same model on the
 * same text reproduces its vector to ~1e-6; 0.99 leaves room for float
 * noise, batching and hardware differences, while another model or
 * revision (even one projected to the same dimension) scores far lower. */
#define ANC_CANARY_MAX 64          /* probes per contract */
#define ANC_CANARY_TEXT_MAX 4096   /* bytes of one probe text */
#define ANC_CANARY_THRESHOLD 0.99f

/* One probe: borrowed pointers when passed in; vec holds the contract's
 * dim floats. */
typedef struct anc_canary {
	const char *text;
	const float *vec;
	uint32_t dim;
} anc_canary;

/* The answer to one probe of a check. */
typedef struct anc_canary_result {
	uint32_t probe;  /* index of the probe, registration order */
	float cosine;    /* cosine(today's vector, reference) */
	int pass;        /* cosine >= threshold */
} anc_canary_result;

/* The answer to a whole check (contract_check). */
typedef struct anc_check_result {
	anc_contract_id_str contract;
	anc_canary_result *results; /* one per probe, in probe order */
	uint32_t n;
	float threshold;            /* ANC_CANARY_THRESHOLD */
	float min_cosine;
	int pass;                   /* every probe passed */
	uint64_t checked_at;        /* unix seconds */
} anc_check_result;

/* A record to upsert. All pointers are borrowed for the duration of the
 * call. */
typedef struct anc_record {
	const char *source;     /* required, 1..ANC_STR_MAX bytes */
	const char *chunk;      /* required, 0..ANC_STR_MAX bytes ("" allowed) */
	const char *text;       /* NULL: keep the stored text (or "" if new) */
	const uint8_t *meta;    /* msgpack map, or NULL */
	uint32_t meta_len;
	const float *vec;       /* dim floats */
	uint32_t dim;
} anc_record;

#define ANC_STR_MAX 1024 /* source and chunk keys, bytes */
/* msgpack values (containers and scalars) in one request: the unpacker
 * allocates 16 bytes or more for each, so this bounds what a request of
 * tiny values costs the server (PROTOCOL.md "Limits"). */
#define ANC_REQ_VALUES_MAX (4u << 20)

typedef enum {
	ANC_UPSERT_CREATED = 0,
	ANC_UPSERT_UPDATED = 1,   /* text, meta or vector changed: rev bumped */
	ANC_UPSERT_UNCHANGED = 2  /* identical: nothing written */
} anc_upsert_status;

typedef struct anc_upsert_result {
	anc_anchor_str anchor;
	uint64_t revision;
	int status; /* anc_upsert_status */
} anc_upsert_result;

typedef struct anc_hit {
	anc_anchor_str anchor;
	float score;       /* metric's value: distance for l2, similarity else */
	uint64_t revision;
	char *source;
	char *chunk;
	char *text;        /* NULL unless text was asked for */
	/* The passage's metadata, a msgpack map: NULL unless it was asked
	 * for ("meta": true) and the passage has one. */
	uint8_t *meta;
	uint32_t meta_len;
} anc_hit;

typedef struct anc_hitlist {
	anc_hit *hits; /* best first */
	uint32_t nhits;
	/* Per-query drift flag (see "Drift" below): 1 when this query vector
	 * is an outlier against the contract's reference; drift_score is its
	 * distance to the reference centroid over the reference's 99th
	 * percentile of such distances (> 1: farther than 99% of the indexed
	 * vectors). When the query was not scored (drift tracking off, or no
	 * reference thresholds yet: the server leaves both out) drift_flag
	 * is 0 and drift_score NaN: test isnan(drift_score), not == 0. */
	int drift_flag;
	float drift_score;
	/* Confidence verdict of the top hit against the contract's
	 * calibration (issue 8, "Grounding" below): anc_confidence;
	 * ANC_CONF_UNKNOWN (0) when the contract has no calibration yet or
	 * the server predates it. */
	int confidence;
} anc_hitlist;

typedef struct anc_provenance {
	anc_contract_id_str contract;
	anc_index_kind index;
	int exact;           /* 1 when the search was exhaustive */
	uint32_t ef_search;  /* HNSW kinds, approximate search only, else 0 */
	uint64_t seq;        /* last write sequence applied to the index */
	uint64_t generation; /* index generation (bumped by each rebuild) */
	/* Added with per-request search parameters (issue 6); 0 from servers
	 * before them. */
	uint32_t nprobe;     /* IVF kinds, approximate search only, else 0 */
	uint32_t rerank;     /* candidates re-scored exactly from the stored
	                        vectors; 0 when none */
	/* Added with receipts (issue 8): the ID of the receipt stored for
	 * this answer, "" when none was asked for. */
	char receipt[32 + 1];
	/* The contract's metric, which says how scores compare (l2: lower
	 * is closer; what anc_assemble needs). Set in query answers (servers
	 * since 2026-11-30); has_metric 0 elsewhere: verify answers, a
	 * receipt's stored provenance, replay's "then" and "now". */
	int has_metric;
	anc_metric metric;
} anc_provenance;

typedef enum {
	ANC_ANCHOR_LIVE = 0,
	ANC_ANCHOR_DELETED = 1, /* a tombstone: it existed, it was deleted */
	ANC_ANCHOR_UNKNOWN = 2  /* never existed in this collection */
} anc_anchor_status;

typedef struct anc_resolved {
	anc_anchor_str anchor;
	int status;        /* anc_anchor_status */
	uint64_t revision; /* live and deleted: last revision */
	char *source;      /* live and deleted; NULL when unknown */
	char *chunk;
	char *text;        /* live only, else NULL */
	uint8_t *meta;     /* live only; msgpack map or NULL */
	uint32_t meta_len;
	char hash[33];     /* hex of first 16 bytes of SHA-256(text); "" unless live */
} anc_resolved;

typedef enum {
	ANC_DELETE_DELETED = 0,
	ANC_DELETE_ALREADY = 1, /* was a tombstone already */
	ANC_DELETE_UNKNOWN = 2
} anc_delete_status;

typedef struct anc_delete_result {
	anc_anchor_str anchor;
	int status; /* anc_delete_status */
	uint64_t revision;
} anc_delete_result;

/* ---- grounding: confidence calibration (issue 8) -------------------------
 *
 * Per contract the engine estimates, from a sample of up to
 * ANC_CALIB_SAMPLE stored vectors, two distributions of closeness:
 * unrelated passages (ANC_CALIB_PAIRS random pairs of distinct sampled
 * passages) and a passage to its nearest neighbour in the sample other
 * than itself. All values are in the metric's own units (similarity for
 * cosine/ip, squared distance for l2) and "pNN" is taken on closeness, so
 * for l2 random_p99 is the 1st percentile of the distances (the closest
 * 1% of random pairs). The rule, with "above" meaning "closer than":
 *
 *   weak   = random_p99: only 1% of unrelated pairs are this close.
 *   strong = clear = random_p99 + 0.5 x (random_p99 - random_p50), well
 *            clear of the random pairs (half their p50..p99 spread
 *            again beyond p99), but never beyond nn_p95 (so that it
 *            stays reachable: 5% of passages have a neighbour that
 *            close), and never below nn_p05 nor weak.
 *   margin = 0.5 x |strong - weak| (0.1 x |random_p99 - random_p50| if
 *            they coincide), at least 1e-6: how much an uncited passage
 *            must beat the cited ones for a claim to be "miscited".
 *
 * A query's top hit is strong when at least as close as strong, weak when
 * at least as close as weak, none otherwise. The engine recomputes the
 * calibration in the background when the contract's live vector count
 * moved by more than ANC_CALIB_DRIFT (10%) since the last one, and never
 * calibrates fewer than ANC_CALIB_MIN vectors. */
#define ANC_CALIB_SAMPLE 2000
#define ANC_CALIB_PAIRS 20000
#define ANC_CALIB_MIN 8
#define ANC_CALIB_DRIFT 0.10

typedef enum {
	ANC_CONF_UNKNOWN = 0, /* no calibration (yet) */
	ANC_CONF_NONE = 1,
	ANC_CONF_WEAK = 2,
	ANC_CONF_STRONG = 3
} anc_confidence;

typedef struct anc_calibration {
	uint64_t computed_at; /* unix seconds; 0: never calibrated */
	uint64_t vectors;     /* live vectors of the contract at that time */
	uint32_t sample;      /* vectors sampled */
	uint32_t pairs;       /* random pairs measured */
	int metric;           /* anc_metric the values are in */
	float random_p50, random_p99; /* unrelated pairs */
	float nn_p05, nn_p50;         /* nearest neighbour (not itself) */
	float weak, strong, margin;   /* the thresholds (rule above) */
} anc_calibration;

/* ---- grounding: verify (issue 8) ---------------------------------------
 *
 * A claim is the embedding of one generated sentence plus the anchors the
 * generator cited (each optionally with the revision it saw). Per claim
 * the engine computes, exactly from the stored vectors (LMDB, not the
 * index): the score against each cited anchor's current vector, whether
 * each is live and at the cited revision, and the best passage of the
 * whole collection. Verdict, in this order (closeness as above):
 *   miscited          the best passage is not cited, is at least weak,
 *                     and beats every live cited passage by >= margin
 *                     (or no cited anchor is live): suggested = it;
 *   supported         the best live cited passage is >= strong;
 *   weakly_supported  ... >= weak;
 *   unsupported       otherwise.
 * The verdict looks at the current vectors; a stale citation (other
 * revision, deleted) is reported per cited anchor. */
#define ANC_VERIFY_CLAIMS_MAX 1024
#define ANC_VERIFY_CITED_MAX 64

typedef enum {
	ANC_VERDICT_SUPPORTED = 0,
	ANC_VERDICT_WEAK = 1,        /* "weakly_supported" */
	ANC_VERDICT_UNSUPPORTED = 2,
	ANC_VERDICT_MISCITED = 3
} anc_verdict;
#define ANC_VERDICT_LAST ANC_VERDICT_MISCITED

typedef struct anc_claim {
	const float *vec;          /* dim floats */
	uint32_t dim;
	const anc_anchor_str *cited; /* ncited anchors (may be 0) */
	const uint64_t *cited_rev;   /* NULL, or ncited revisions (0: any) */
	uint32_t ncited;
} anc_claim;

typedef struct anc_cited {
	anc_anchor_str anchor;
	int status;              /* anc_anchor_status now */
	uint64_t revision;       /* current (last for deleted), 0 unknown */
	uint64_t cited_revision; /* 0: the claim named none */
	int at_revision;         /* live and (no revision cited or equal) */
	int scored;              /* 1 when score holds (a live vector) */
	float score;             /* exact, metric's units */
} anc_cited;

typedef struct anc_claim_result {
	int verdict;             /* anc_verdict */
	anc_cited *cited;
	uint32_t ncited;
	int has_best;            /* 0 only for an empty collection */
	anc_anchor_str best;     /* best passage of the collection */
	uint64_t best_revision;
	float best_score;
	int best_cited;          /* 1 when best is among the cited */
	int has_cited_score;     /* 1 when a cited anchor had a score */
	float cited_score;       /* best score among live cited anchors */
	anc_anchor_str suggested; /* miscited: = best; "" otherwise */
} anc_claim_result;

typedef struct anc_verify_result {
	anc_claim_result *claims;
	uint32_t n;
	anc_provenance prov;     /* exact 1; receipt set when asked */
	anc_calibration calib;   /* the thresholds used */
} anc_verify_result;

/* "supported", "weakly_supported", "unsupported", "miscited"; "unknown"
 * out of range. */
const char *anc_verdict_name(int v);
int anc_verdict_parse(const char *s); /* -1 for an unknown name */
/* "unknown", "none", "weak", "strong". */
const char *anc_confidence_name(int c);
int anc_confidence_parse(const char *s);

/* ---- grounding: receipts (issue 8) -------------------------------------
 *
 * A receipt records what a query (or verify) returned: the canonical
 * request's SHA-256, the contract, index kind, generation and sequence,
 * the search parameters, the query vectors themselves (so that a replay
 * is exact; 4 x dim bytes each), and per query the returned anchors with
 * their revisions and scores, with the time. The record is authenticated
 * with HMAC-SHA256 under the server's secret; reading it re-checks the
 * MAC and reports a mismatch as ANC_ETAMPERED. Receipt IDs are 32 hex
 * digits: 8 bytes of the creation time in microseconds, 8 random bytes. */
#define ANC_RECEIPT_ID_LEN 32
typedef char anc_receipt_id_str[ANC_RECEIPT_ID_LEN + 1];

typedef enum {
	ANC_RECEIPT_QUERY = 0,
	ANC_RECEIPT_VERIFY = 1
} anc_receipt_kind;

typedef struct anc_receipt_hit {
	anc_anchor_str anchor;
	uint64_t revision;
	float score;
	char *text; /* the text of that revision when asked for and still
	               retained, else NULL */
} anc_receipt_hit;

typedef struct anc_receipt_list {
	anc_receipt_hit *hits; /* query: the hits, best first; verify: the
	                          cited anchors in claim order, then the best
	                          passage when it was not cited */
	uint32_t nhits;
	int verdict;           /* verify: anc_verdict; query: -1 */
} anc_receipt_list;

typedef struct anc_receipt {
	anc_receipt_id_str id;
	int kind;                 /* anc_receipt_kind */
	uint64_t time_us;         /* creation, unix microseconds */
	char collection[ANC_COLLECTION_MAX + 1];
	anc_provenance prov;      /* as answered (receipt = id) */
	uint32_t k;               /* query: k; verify: 0 */
	int with_text;
	char digest[64 + 1];      /* hex SHA-256 of the canonical request */
	uint32_t nq, dim;         /* vectors recorded */
	anc_receipt_list *lists;  /* nq */
	uint32_t record_bytes;    /* size of the stored record */
	int authentic;            /* 1: the HMAC matched (always 1 in a
	                             returned receipt: a mismatch is an
	                             error) */
} anc_receipt;

/* What changed for one receipt entry since the receipt was made. */
typedef enum {
	ANC_CHANGE_GONE = 0,     /* live, but no longer in the answer */
	ANC_CHANGE_DELETED = 1,  /* deleted (or unknown) now */
	ANC_CHANGE_REVISED = 2,  /* still returned, revision bumped */
	ANC_CHANGE_NEW = 3,      /* a new hit better than one of the old */
	ANC_CHANGE_VERDICT = 4   /* verify: the claim's verdict changed */
} anc_change_kind;
#define ANC_CHANGE_LAST ANC_CHANGE_VERDICT

typedef struct anc_replay_change {
	uint32_t list;           /* query / claim number */
	int kind;                /* anc_change_kind */
	anc_anchor_str anchor;   /* "" for verdict changes */
	uint64_t old_revision, new_revision; /* verdict: old/new verdict */
	float old_score, new_score;
} anc_replay_change;

typedef struct anc_replay_result {
	anc_receipt_id_str id;
	int kind;                /* anc_receipt_kind */
	anc_provenance then;     /* the receipt's */
	anc_provenance now;      /* the replay's (receipt "") */
	anc_replay_change *changes;
	uint32_t nchanges;
	uint32_t nlists;
	int unchanged;           /* 1: same anchors, revisions, verdicts */
} anc_replay_result;

const char *anc_change_kind_name(int k); /* "gone", "deleted", "revised",
                                           "new", "verdict" */
int anc_change_kind_parse(const char *s);

typedef struct anc_contract_info {
	anc_contract_id_str id;
	anc_contract contract;
	int state;          /* anc_contract_state */
	uint64_t vectors;   /* live passages with a vector under it
	                       (coverage = vectors / the collection's live) */
	uint64_t index_ntotal; /* entries in the faiss index (incl. stale) */
	/* Memory of the index per entry, bytes (issue 6): code_bytes is the
	 * encoded vector alone (4 x dim for raw floats, dim for SQ8, pq_m x
	 * pq_nbits / 8 for PQ); index_bytes adds graph links, ids and the id
	 * map (an estimate from the index's structure). Describes the index
	 * currently serving, so a trained kind reports flat until trained. */
	uint32_t code_bytes;
	uint32_t index_bytes;
	int trained;            /* 1 unless a trained kind still awaits its
	                           training (served by a flat index) */
	/* Canary fingerprint (added with contract versions): */
	uint32_t canaries;      /* canary probes registered (0..ANC_CANARY_MAX) */
	uint64_t checked_at;    /* unix seconds of the last contract_check; 0:
	                           never checked */
	int check_pass;         /* last check: 1 every probe passed */
	float check_min_cosine; /* last check: lowest probe cosine */
	anc_calibration calib;  /* issue 8; computed_at 0: none yet */
} anc_contract_info;

typedef struct anc_collection_info {
	char name[ANC_COLLECTION_MAX + 1];
	uint64_t live;
	uint64_t deleted;
	anc_contract_id_str default_contract; /* "" when none registered */
	anc_contract_info *contracts;
	uint32_t ncontracts;
} anc_collection_info;

typedef struct anc_info {
	char version[32];
	uint64_t seq; /* last committed write sequence */
	anc_collection_info *collections;
	uint32_t ncollections;
} anc_info;

/* ---- anchors ---------------------------------------------------------- */

/* Compute the raw anchor of (collection, source, chunk). Returns ANC_OK, or
 * ANC_ENOMEM if the hash context cannot be allocated (raw is then zeroed). */
int anc_anchor_compute(const char *collection, const char *source,
                        const char *chunk, uint8_t raw[ANC_ANCHOR_RAW]);

/* Print raw as 26 base32 characters plus NUL. */
void anc_anchor_format(const uint8_t raw[ANC_ANCHOR_RAW], anc_anchor_str out);

/* Parse a printed anchor. ANC_EINVAL (message names the anchor and says
 * what is wrong) unless s is exactly 26 characters of the alphabet and
 * decodes to 16 bytes with zero trailing bits. */
int anc_anchor_parse(const char *s, uint8_t raw[ANC_ANCHOR_RAW], anc_error *err);

/* ---- contracts -------------------------------------------------------- */

/* Fill *c with empty strings, dim 0, metric cosine, normalize 1 and the
 * default index spec. */
void anc_contract_init(anc_contract *c);

/* Check every field; ANC_EINVAL naming the first bad field, its value and
 * what is expected. Fills HNSW defaults left at 0 when kind is HNSW. */
int anc_contract_validate(anc_contract *c, anc_error *err);

/* The contract's ID (see above). c must be valid. */
void anc_contract_id(const anc_contract *c, uint8_t raw[ANC_CONTRACT_ID_RAW]);
void anc_contract_id_format(const uint8_t raw[ANC_CONTRACT_ID_RAW],
                            anc_contract_id_str out);
/* ANC_EINVAL unless s is exactly 16 hex digits. */
int anc_contract_id_parse(const char *s, uint8_t raw[ANC_CONTRACT_ID_RAW],
                          anc_error *err);

/* Names <-> enums. The parse functions return -1 for an unknown name. */
const char *anc_metric_name(anc_metric m);
int anc_metric_parse(const char *s);
/* Length of the valid UTF-8 sequence at p (n bytes left: 1..4), or 0
 * when there is none (a stray, overlong, surrogate or cut sequence). */
size_t anc_utf8_seq(const unsigned char *p, size_t n);
/* ANC_OK when the n bytes at s are UTF-8, else ANC_EINVAL naming what and
 * the first bad byte and its offset. */
int anc_utf8_check(const char *s, size_t n, const char *what,
                   anc_error *err);
/* Bytes of the control character at p (n bytes left): 1 for C0 or DEL,
 * 2 for C1 (U+0080..U+009F, c2 80..c2 9f; U+009B starts a terminal
 * escape sequence), 0 for anything else. */
size_t anc_text_control(const unsigned char *p, size_t n);
const char *anc_index_kind_name(anc_index_kind k);
int anc_index_kind_parse(const char *s);
const char *anc_contract_state_name(anc_contract_state s);
int anc_contract_state_parse(const char *s);
const char *anc_upsert_status_name(int s);
const char *anc_anchor_status_name(int s);
const char *anc_delete_status_name(int s);

/* ANC_EINVAL unless name is a valid collection name (see above). */
int anc_collection_name_check(const char *name, anc_error *err);

/* ---- drift ------------------------------------------------------------
 *
 * Per (collection, contract) the engine compares the indexed vectors (the
 * reference) with a sliding window of recent query vectors (the current
 * side). A report holds five statistics, each with its value, threshold
 * and verdict, and an overall status:
 *
 *   0 centroid_distance   distance between the reference and window
 *        centroids: cosine distance (1 - cos) for cosine/ip, Euclidean for
 *        l2. threshold: the 95% quantile of the same distance for bootstrap
 *        windows drawn from the reference sample (Evidently's "distance"
 *        method with bootstrap, quantile_probability 0.95).
 *   1 drifted_components  share of dimensions whose Wasserstein-1 distance,
 *        normalised by the reference std, exceeds 0.1, or the sampling
 *        noise ANC_DRIFT_COMPONENT_NOISE x sqrt(1/window + 1/reference
 *        sample) when that is more (detail: the cut in force); drift when
 *        the share exceeds 0.2 (Evidently's "ratio" method defaults).
 *
 * The statistics see the distinct query vectors of the window: a repeated
 * query counts once, and the report's window is their number.
 *   2 mmd                 value: permutation p-value of the MMD^2 with an
 *        RBF kernel, median-heuristic bandwidth, 100 permutations (detail:
 *        the MMD^2); drift when p < 0.05 (Alibi Detect MMDDrift defaults).
 *   3 classifier_auc      5-fold cross-validated ROC AUC of a logistic
 *        regression telling window from reference; drift when AUC > 0.55
 *        (Evidently's "model" method default).
 *   4 top1_score_shift    share of window queries whose top-1 score is
 *        worse than the reference's 5th percentile (detail: that
 *        percentile); about 0.05 without drift; fires above 0.10 (twice
 *        the expected share; Anchorage's own default).
 *
 * Status: insufficient_data when the window or the reference sample holds
 * fewer than min_window / min_reference vectors; else drift when 3 or more
 * statistics fire, warn when 2 fire, ok otherwise (a single statistic at
 * p = 0.05 fires in 1 window of 20 by chance alone; requiring agreement
 * keeps false alarms rare while any real shift moves several at once).
 */

typedef enum {
	ANC_DRIFT_OK = 0,
	ANC_DRIFT_WARN = 1,
	ANC_DRIFT_DRIFT = 2,
	ANC_DRIFT_INSUFFICIENT = 3 /* "insufficient_data" */
} anc_drift_status;

enum {
	ANC_DRIFT_STAT_CENTROID = 0,
	ANC_DRIFT_STAT_COMPONENTS = 1,
	ANC_DRIFT_STAT_MMD = 2,
	ANC_DRIFT_STAT_CLASSIFIER = 3,
	ANC_DRIFT_STAT_SCORE = 4,
	ANC_DRIFT_NSTATS = 5
};

#define ANC_DRIFT_DEFAULT_WINDOW 1024
#define ANC_DRIFT_DEFAULT_RESERVOIR 1024
#define ANC_DRIFT_DEFAULT_WRITE_WINDOW 256
#define ANC_DRIFT_DEFAULT_QUANTILE 0.95       /* Evidently */
#define ANC_DRIFT_DEFAULT_BOOTSTRAP 100
#define ANC_DRIFT_DEFAULT_COMPONENT_THRESHOLD 0.1 /* Evidently */
/* ... raised to this many times sqrt(1/window + 1/reference sample), the
 * sampling noise of W1 / sd between two samples of one distribution, for
 * windows too small for 0.1 (index/drift.c, stat_components) */
#define ANC_DRIFT_COMPONENT_NOISE 2.5
#define ANC_DRIFT_DEFAULT_COMPONENT_SHARE 0.2     /* Evidently */
#define ANC_DRIFT_DEFAULT_PERMUTATIONS 100        /* Alibi Detect */
#define ANC_DRIFT_DEFAULT_P_VALUE 0.05            /* Alibi Detect */
#define ANC_DRIFT_DEFAULT_AUC 0.55                /* Evidently */
#define ANC_DRIFT_DEFAULT_FOLDS 5
#define ANC_DRIFT_DEFAULT_EPOCHS 8
#define ANC_DRIFT_DEFAULT_SCORE_QUANTILE 0.05
#define ANC_DRIFT_DEFAULT_SCORE_SHARE 0.10
#define ANC_DRIFT_DEFAULT_MIN_WINDOW 64
#define ANC_DRIFT_DEFAULT_MIN_REFERENCE 64

typedef struct anc_drift_config {
	uint32_t window;        /* query vectors in the sliding window */
	uint32_t reservoir;     /* reference sample size */
	uint32_t write_window;  /* recent writes kept */
	uint32_t bootstrap;     /* centroid threshold bootstrap draws */
	double quantile;        /* centroid threshold quantile */
	double component_threshold;
	double component_share;
	uint32_t permutations;
	double p_value;
	double auc;
	uint32_t folds;
	uint32_t epochs;        /* logistic regression passes over the data */
	double score_quantile;  /* reference top-1 percentile (worst side) */
	double score_share;     /* share of window below it that fires */
	uint32_t min_window;
	uint32_t min_reference;
} anc_drift_config;

typedef struct anc_drift_stat {
	double value;     /* see the list above */
	double threshold;
	double detail;    /* per statistic, see above; 0 when unused */
	int fired;        /* 1 when value is past threshold */
	int computed;     /* 0 when there was not enough data */
} anc_drift_stat;

typedef struct anc_drift_report {
	char collection[ANC_COLLECTION_MAX + 1];
	anc_contract_id_str contract;
	int status;               /* anc_drift_status */
	uint32_t nfired;
	double time;              /* Unix time of the report, seconds */
	double compute_seconds;   /* how long the statistics took */
	uint64_t reference_count; /* vectors that entered the reference */
	uint32_t reference_sample;/* of which in the reservoir */
	uint32_t reference_scores;/* reference top-1 scores known */
	uint32_t window;          /* queries in the window */
	uint32_t window_flagged;  /* of which flagged per query */
	uint32_t window_size;     /* the configured window (drift --set
	                             window); 0 when not known (reports kept
	                             in the history, older servers) */
	uint64_t queries_seen;    /* queries observed since start */
	uint64_t queries_flagged; /* of which flagged */
	uint64_t writes_seen;     /* vectors written since start */
	double write_centroid_distance; /* recent writes vs reference; -1 n/a */
	anc_drift_stat stats[ANC_DRIFT_NSTATS];
} anc_drift_report;

/* "ok", "warn", "drift", "insufficient_data"; "unknown" otherwise. */
const char *anc_drift_status_name(int status);
/* -1 for an unknown name. */
int anc_drift_status_parse(const char *s);
/* "centroid_distance", "drifted_components", "mmd", "classifier_auc",
 * "top1_score_shift"; NULL out of range. */
const char *anc_drift_stat_name(int i);

/* ---- vectors ---------------------------------------------------------- */

/* Largest squared L2 norm of a vector written or queried: FLT_MAX / 4, so
 * that the squared L2 distance of two such vectors, at most
 * (|a| + |b|)^2 = 4 max|v|^2, and their inner product stay finite in
 * float32 (faiss's arithmetic). Beyond it a stored vector silently drops
 * out of every answer (its distances are Inf or NaN). */
#define ANC_VECTOR_NORM2_MAX (3.4028234663852886e38 / 4)

/* Check that v holds dim finite values and that its squared norm is at
 * most ANC_VECTOR_NORM2_MAX: ANC_ENONFINITE naming the first NaN/Inf
 * component, or the norm, otherwise. */
int anc_vector_check_finite(const float *v, uint32_t dim, anc_error *err);
/* The same check in the same single pass, also giving the squared norm it
 * summed (in double, as anc_vector_norm) to callers that need the norm. */
int anc_vector_check_norm2(const float *v, uint32_t dim, double *norm2,
                           anc_error *err);

/* L2 norm, computed in double. */
double anc_vector_norm(const float *v, uint32_t dim);

/* SHA-256 helper used for content hashes: hex of the first 16 bytes of
 * SHA-256(data) into out[33]. ANC_ENOMEM if the hash context cannot be
 * allocated (out is then ""). */
int anc_hash_hex16(const void *data, size_t len, char out[33]);

/* SHA-256 of data into md[32]. ANC_ENOMEM as above. */
int anc_sha256(const void *data, size_t len, uint8_t md[32]);

#ifdef __cplusplus
}
#endif
#endif /* ANC_TYPES_H */
