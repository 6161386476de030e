/*
 * tu_corpus.h — the real corpora of ../shared/data as the end-to-end tests
 * use them: the 90 SOTU passages (text from sotu_chunks.jsonl, MiniLM vectors
 * from the .fvecs file, row i = record i) and the anchors Anchorage must give
 * them.
 *
 * Design note: the tests load the corpus through the CLI the way an operator
 * would (`anchorage load ... --chunk-field row`), so the chunk key of row i
 * is the decimal row number and the source is the JSONL "source" field. The
 * expected anchors are computed here with anc_anchor_compute, independently
 * of the server.
 *
 * It also holds the contracts and set-up steps several suites share (an l2
 * contract of raw vectors, a collection with a contract over a client), so
 * that each suite spells out only what it tests.
 *
 * Like testutil.h, failures to read the data fail the running test.
 */
#ifndef ANC_TU_CORPUS_H
#define ANC_TU_CORPUS_H

#include <stdint.h>

#include "anc_types.h"
#include "testutil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TU_SOTU_ROWS 90
#define TU_SOTU_DIM 384

typedef struct tu_sotu {
	uint32_t n;                /* rows (90) */
	uint32_t dim;              /* 384 */
	float *vecs;               /* n * dim, from the MiniLM .fvecs */
	char **text;               /* n passage texts */
	char **source;             /* n source IDs */
	char **chunk;              /* n chunk keys: the decimal row number */
	anc_anchor_str *anchors;   /* n expected anchors for `collection` */
	char collection[ANC_COLLECTION_MAX + 1];
} tu_sotu;

/* Rows [begin, end) of the data file rel (under tu_data_path; end
 * UINT32_MAX: to the last), malloc'd (free()): *n rows of *dim values.
 * A read error fails the test with the reader's message. */
float *tu_fvecs(const char *rel, uint32_t begin, uint32_t end, uint32_t *n,
                uint32_t *dim);
int32_t *tu_ivecs(const char *rel, uint32_t begin, uint32_t end, uint32_t *n,
                  uint32_t *dim);

/* Read the SOTU corpus and compute its anchors in collection. */
void tu_sotu_read(tu_sotu *s, const char *collection);
void tu_sotu_free(tu_sotu *s); /* zeroed or NULL is fine */

/* Row of anchor a in s, or -1. */
int tu_sotu_row(const tu_sotu *s, const char *anchor);

/* Row i of s as a record to upsert (source, chunk, text, MiniLM vector;
 * no metadata). Its pointers borrow from s. */
anc_record tu_sotu_record(const tu_sotu *s, uint32_t i);

/* The MiniLM contract of the tests: {"name":"minilm", "model":
 * "sentence-transformers/all-MiniLM-L6-v2", "revision":"1", "dim":384,
 * "metric":"cosine", "normalize":true}, flat index. */
void tu_contract_minilm(anc_contract *c);

/* Its canonical contract ID, computed here (not by a server). */
void tu_contract_minilm_id(anc_contract_id_str out);

/* Its JSON file for `anchorage contract register`, written to path. */
void tu_contract_minilm_write(const char *path);

/* A contract of raw vectors (SIFT descriptors, pixels, synthetic data):
 * name, model, revision "1", dim, metric l2, not normalised, flat index. */
void tu_contract_l2(anc_contract *c, const char *name, const char *model,
                    uint32_t dim);

/* tu_contract_l2 over the 128-d SIFT descriptors (model "sift") with the
 * tests' settings for each index kind: HNSW efConstruction 200, efSearch
 * 128; IVF nprobe 8, nlist 32 (flat) or 16 with 32 x 6-bit PQ codes, so
 * that a few thousand vectors train them. */
void tu_contract_sift(anc_contract *c, const char *name,
                      anc_index_kind kind);

/* Over cl: create collection and register c in it; its ID into id (when
 * not NULL). Either step failing fails the test. */
void tu_client_setup(anc_client *cl, const char *collection,
                     const anc_contract *c, anc_contract_id_str id);

/* Through the CLI against the server tu_cli points at: create collection,
 * register the MiniLM contract (file written in dir), load the 90 passages
 * with --vectors; returns the contract ID printed by `contract register`
 * into id. Every step must exit 0. If load_json is not NULL it gets the
 * stdout of `anchorage --json load` (malloc'd, free() it). */
void tu_sotu_load_cli(const char *dir, const char *collection,
                      anc_contract_id_str id, char **load_json);

/* A server on a fresh data directory tmp/data (ipc socket tmp/s.sock,
 * --nosync; tu_cli points at it) with the corpus loaded by
 * tu_sotu_load_cli into collection "sotu"; the contract ID into id. */
void tu_sotu_serve(tu_server *srv, const char *tmp, anc_contract_id_str id);

/* Compute a printed anchor; fails the test if hashing fails. */
void tu_anchor(const char *collection, const char *source, const char *chunk,
               anc_anchor_str out);

#ifdef __cplusplus
}
#endif
#endif /* ANC_TU_CORPUS_H */
