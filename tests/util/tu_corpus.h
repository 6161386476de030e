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

/* Read the SOTU corpus and compute its anchors in collection. */
void tu_sotu_read(tu_sotu *s, const char *collection);
void tu_sotu_free(tu_sotu *s); /* zeroed or NULL is fine */

/* Row of anchor a in s, or -1. */
int tu_sotu_row(const tu_sotu *s, const char *anchor);

/* The MiniLM contract of the tests: {"name":"minilm", "model":
 * "sentence-transformers/all-MiniLM-L6-v2", "revision":"1", "dim":384,
 * "metric":"cosine", "normalize":true}, flat index. */
void tu_contract_minilm(anc_contract *c);

/* Its JSON file for `anchorage contract register`, written to path. */
void tu_contract_minilm_write(const char *path);

/* Through the CLI against the server tu_cli points at: create collection,
 * register the MiniLM contract (file written in dir), load the 90 passages
 * with --vectors; returns the contract ID printed by `contract register`
 * into id. Every step must exit 0. If load_json is not NULL it gets the
 * stdout of `anchorage --json load` (malloc'd, free() it). */
void tu_sotu_load_cli(const char *dir, const char *collection,
                      anc_contract_id_str id, char **load_json);

/* Compute a printed anchor; fails the test if hashing fails. */
void tu_anchor(const char *collection, const char *source, const char *chunk,
               anc_anchor_str out);

#ifdef __cplusplus
}
#endif
#endif /* ANC_TU_CORPUS_H */
