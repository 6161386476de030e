/*
 * cli.h — private header of the anchorage CLI (client/cli_*.c and
 * client/anchorage.c). Not installed, not a contract for other components;
 * it exists so that the parsing and formatting parts of the CLI can be unit
 * tested (tests/unit/cli_input_test.c) without a server.
 *
 * Modules:
 *   cli_json.c   contract JSON files and JSONL record lines (jansson)
 *   cli_args.c   option values: numbers, row ranges, --vector arrays, text
 *                trimming, the one-line error report
 *   cli_out.c    JSON values and human output for server answers
 *   cli_cmd.c    the commands (info, ping, collection, contract, resolve,
 *                delete)
 *   cli_input.c  streaming inputs: gzip-transparent line reader with
 *                positions, .fvecs/.npy row streams, the .npy header
 *   cli_load.c   the load command (pipelined, resumable)
 *   cli_query.c  the query command
 *   cli_assemble.c  the assemble command
 *
 * Everything follows the project rules: status return, anc_error naming the
 * bad field, out-parameters owned by the caller as documented per function.
 * Single-threaded.
 */
#ifndef ANC_CLI_H
#define ANC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "anc_client.h"
#include "anc_error.h"
#include "anc_proto.h"
#include "anc_types.h"

/* ---- contract files (cli_json.c) --------------------------------------- */

/* Largest contract file read (bytes). */
#define ANC_CLI_CONTRACT_FILE_MAX (1u << 20)

/* Structured fields left out of a load: names kept per line, and names
 * the loader warns about (once each) before it stops naming them. */
#define ANC_CLI_UNMAPPED_MAX 4
#define ANC_CLI_UNMAPPED_SAID 16

/* Parse a contract JSON document:
 *   {"name","model","revision","dim","metric","normalize",
 *    "preprocess"?, "dtype"?:"f32",
 *    "index"?: {"kind":"flat"} | {"kind":"hnsw","m"?,"ef_construction"?,
 *                                 "ef_search"?}}
 * Strict: unknown keys (top level and inside "index"), duplicate keys,
 * wrong types and out-of-range values are ANC_EINVAL naming the key; JSON
 * syntax errors are ANC_EMALFORMED with origin:line:column. origin names the
 * document in messages (a file name). On success *out has passed
 * anc_contract_validate (HNSW defaults filled in). */
int anc_cli_contract_parse(const char *json, size_t len, const char *origin,
                           anc_contract *out, anc_error *err);

/* Read path (at most ANC_CLI_CONTRACT_FILE_MAX bytes) and parse it as
 * above. ANC_EIO when the file cannot be read. */
int anc_cli_contract_load(const char *path, anc_contract *out,
                          anc_error *err);

/* ---- JSONL record lines (cli_json.c) ------------------------------------ */

/* Where the fields of a record are found in a JSONL line. */
typedef struct anc_cli_fields {
	const char *source;  /* default "source" */
	const char *chunk;   /* default "chunk" */
	const char *text;    /* default "text" */
	const char *vector;  /* default "vector" */
	int chunk_explicit;  /* 1: a missing chunk field is an error;
	                        0: it means "" */
	int text_explicit;   /* 1: a missing text field is an error;
	                        0: it means "keep the stored text" */
	int want_vector;     /* 1: the line must carry the vector; 0: vectors
	                        come from elsewhere (--vectors) and the field is
	                        ignored */
	uint32_t max_text;   /* bytes; default: anc_limits_default's max_text */
	const char *const *meta; /* --meta-field names, in flag order */
	uint32_t nmeta;          /* 0: no metadata (the stored one is kept) */
	uint32_t max_meta;       /* bytes of the packed map; default:
	                            anc_limits_default's max_meta */
} anc_cli_fields;

/* Nesting allowed in a record's metadata, counted as the server counts
 * it (MPK_META_MAX_DEPTH): the map of --meta-field values is level 1, a
 * scalar field value level 2, and each array/object a level more. */
#define ANC_CLI_META_DEPTH 8

void anc_cli_fields_default(anc_cli_fields *f);

/* One parsed line. Owns its strings and vector (anc_cli_line_clear). */
typedef struct anc_cli_line {
	char *source; /* never NULL after success */
	char *chunk;  /* never NULL after success ("" allowed) */
	char *text;   /* NULL: the line had no text field */
	float *vec;   /* NULL unless f->want_vector */
	uint32_t dim;
	int vec_ignored; /* !f->want_vector and the line has the vector
	                    field all the same (another model's, say) */
	int unmapped_any;  /* a field holding an object or array that no
	                      mapping reads: structured data left behind,
	                      most likely metadata */
	/* The names of the first ANC_CLI_UNMAPPED_MAX of them that are short
	 * and plain ([A-Za-z0-9_.-], safe to print and to paste), in line
	 * order; nunmapped of them. */
	char unmapped[ANC_CLI_UNMAPPED_MAX][64];
	uint32_t nunmapped;
	int unmapped_unnamed; /* one of them is not among those names */
	uint8_t *meta;     /* msgpack map of the --meta-field values present
	                      in the line (keys in flag order), or NULL when
	                      f->nmeta is 0 */
	uint32_t meta_len;
} anc_cli_line;

/* Parse one JSONL line (len bytes, no trailing newline needed). expect_dim
 * 0 accepts any vector length >= 1; otherwise the vector must have exactly
 * expect_dim values. Sources and chunks may be strings or integers
 * (integers become decimal strings). Errors are ANC_EMALFORMED (not JSON,
 * not an object) or ANC_EINVAL / ANC_ETOOBIG naming the field; the message
 * does not include file:line (the caller adds it). On failure *out is
 * cleared. */
int anc_cli_line_parse(const char *line, size_t len, const anc_cli_fields *f,
                       uint32_t expect_dim, anc_cli_line *out,
                       anc_error *err);

/* Free what *l owns and zero it. NULL and zeroed lines are fine. */
void anc_cli_line_clear(anc_cli_line *l);

/* Pack a JSON value of the metadata map as msgpack, keeping its type
 * (string, integer, real, boolean, null, arrays and objects; the map and
 * the value together at most ANC_CLI_META_DEPTH deep; object keys in the
 * document's order). Appends to buf, len and cap (malloc'd, grown as
 * needed). what names the value in messages. */
int anc_cli_meta_pack(json_t *v, const char *what, uint8_t **buf,
                      size_t *len, size_t *cap, anc_error *err);

/* ---- streaming inputs (cli_input.c) ------------------------------------- */

/* Bytes of the uncompressed input hashed for a checkpoint fingerprint. */
#define ANC_CLI_HEAD_BYTES (1u << 20)
/* Longest JSONL line accepted. */
#define ANC_CLI_LINE_MAX (64u << 20)
/* What is kept of a longer line (anc_cli_lines_next). */
#define ANC_CLI_LINE_KEEP 4096u
/* Read past a longer line's start at most this far looking for its end;
 * beyond it the input is not lines at all (fatal, *line NULL). */
#define ANC_CLI_LINE_SKIP_MAX (1024u << 20)

/* A line reader over a file, gzip-compressed or not (zlib decides from the
 * first bytes), or stdin for "-". Memory: one 1 MiB buffer plus the longest
 * line. Lines end at "\n" ("\r\n" is stripped too); a last line without
 * "\n" counts. */
typedef struct anc_cli_lines anc_cli_lines;

int anc_cli_lines_open(const char *path, anc_cli_lines **out,
                       anc_error *err);
void anc_cli_lines_close(anc_cli_lines *r); /* NULL is fine */

/* Next line: *line points into the reader (valid until the next call),
 * NUL-terminated, *len without the newline. *line is NULL at the end. A
 * line longer than ANC_CLI_LINE_MAX is ANC_ETOOBIG naming file:line; it
 * has been read to its end (the line number counts it) and *line holds
 * its first ANC_CLI_LINE_KEEP bytes at most, so a caller may go on with
 * the next line; past ANC_CLI_LINE_SKIP_MAX bytes without a newline it is
 * ANC_ETOOBIG with *line NULL, and the input cannot go on. */
int anc_cli_lines_next(anc_cli_lines *r, const char **line, size_t *len,
                       anc_error *err);

/* Line number of the line last returned (1-based; 0 before the first). */
uint64_t anc_cli_lines_lineno(const anc_cli_lines *r);
/* Offset in the uncompressed stream just after the line last returned. */
uint64_t anc_cli_lines_offset(const anc_cli_lines *r);
/* Compressed bytes consumed so far (= offset for plain files). */
uint64_t anc_cli_lines_raw_offset(const anc_cli_lines *r);
/* Size of the file on disk, or -1 (stdin, pipes). */
int64_t anc_cli_lines_size(const anc_cli_lines *r);
/* 1 when the input is gzip-compressed. */
int anc_cli_lines_gzip(const anc_cli_lines *r);
/* Hex SHA-256 of the first ANC_CLI_HEAD_BYTES of the uncompressed stream
 * (all of it when shorter), computed at open. */
const char *anc_cli_lines_head_sha(const anc_cli_lines *r);
/* Count the lines of a plain (not compressed) regular file without
 * keeping it in memory; ANC_EUNSUPPORTED for stdin and gzip input. */
int anc_cli_lines_count_file(const char *path, uint64_t *n, anc_error *err);

/* Parse a .npy header dict (the text after the length field), strictly:
 * exactly the keys 'descr', 'fortran_order', 'shape'; descr '<f4';
 * fortran_order False; shape a 2-tuple (rows, dim) with dim
 * 1..ANC_DIM_MAX; optional trailing comma; padding spaces and a final
 * "\n". Anything else is ANC_EMALFORMED / ANC_EUNSUPPORTED naming the
 * field, the expected and the received value. origin names the file. */
int anc_cli_npy_header_parse(const char *hdr, size_t len, const char *origin,
                             uint64_t *rows, uint32_t *dim, anc_error *err);

/* A stream of float32 rows from a .fvecs or .npy file (detected by the
 * "\x93NUMPY" magic), gzip-compressed or not. */
typedef struct anc_cli_vecs anc_cli_vecs;

int anc_cli_vecs_open(const char *path, anc_cli_vecs **out, anc_error *err);
void anc_cli_vecs_close(anc_cli_vecs *v); /* NULL is fine */
uint32_t anc_cli_vecs_dim(const anc_cli_vecs *v);
/* Rows in the file when known from the header or the file size, else -1
 * (a gzip-compressed .fvecs). */
int64_t anc_cli_vecs_rows(const anc_cli_vecs *v);
/* "npy" or "fvecs". */
const char *anc_cli_vecs_format(const anc_cli_vecs *v);
/* Size on disk and the head hash, as for the line reader. */
int64_t anc_cli_vecs_size(const anc_cli_vecs *v);
const char *anc_cli_vecs_head_sha(const anc_cli_vecs *v);
/* Read the next row into dst (dim floats). *eof = 1 (and dst untouched)
 * at the end. A short row, an odd d in .fvecs, rows past the .npy shape
 * are ANC_EMALFORMED naming file and row. */
int anc_cli_vecs_next(anc_cli_vecs *v, float *dst, int *eof,
                      anc_error *err);
/* Rows read so far. */
uint64_t anc_cli_vecs_row(const anc_cli_vecs *v);

/* Rows [begin, end) (end UINT32_MAX: all) of a vector file in any format
 * the loader reads (.fvecs, .npy, gzip or not) into a malloc'd array
 * (free()): what query, verify and contract check/compare read with
 * --vectors. Rows past the end are ANC_EINVAL naming the file's size;
 * more than ANC_CLI_VECTORS_MAX bytes of rows from a stream (a pipe, a
 * gzip file) are ANC_ETOOBIG. */
#define ANC_CLI_VECTORS_MAX (512u << 20)
int anc_cli_vectors_read(const char *path, uint32_t begin, uint32_t end,
                         float **out, uint32_t *nrows, uint32_t *dim,
                         anc_error *err);
/* The same with another bound than ANC_CLI_VECTORS_MAX (tests). */
int anc_cli_vectors_read_max(const char *path, uint32_t begin, uint32_t end,
                             size_t max_bytes, float **out, uint32_t *nrows,
                             uint32_t *dim, anc_error *err);

/* ---- option values (cli_args.c) --------------------------------------- */

/* Decimal unsigned integer in [min, max]; what names the option in the
 * message ("--batch: expected an integer 1..10000, got 'x'"). */
int anc_cli_u32_parse(const char *s, const char *what, uint32_t min,
                      uint32_t max, uint32_t *out, anc_error *err);

/* "A-B" (inclusive) or "A", 0-based: *begin = A, *end = B + 1. */
int anc_cli_rows_parse(const char *s, uint32_t *begin, uint32_t *end,
                       anc_error *err);

/* A JSON array of numbers ("[0.1, 2, -3e-2]") as a malloc'd float vector
 * (free()). what names the option in messages. */
int anc_cli_vector_parse(const char *json, const char *what, float **out,
                         uint32_t *dim, anc_error *err);

/* Copy text into out (outsz bytes) as one line: control characters and
 * runs of white space become one space, leading/trailing space dropped, cut
 * at max bytes on a UTF-8 character boundary with "..." appended when cut.
 * out is always NUL-terminated (outsz >= 4). */
void anc_cli_text_oneline(const char *text, size_t max, char *out,
                          size_t outsz);

/* Write the one error line "anchorage: error: NAME: message\n" to fp. A
 * message that already starts with "NAME: " (server errors, see
 * anc_client.h) is not prefixed twice. */
void anc_cli_error_print(FILE *fp, const anc_error *err);

/* Remove a leading "NAME: " (the code's own name) from err->msg, so that
 * a server error can be wrapped with more context without repeating the
 * name in the middle of the line. */
void anc_cli_error_strip_name(anc_error *err);

/* ---- output (cli_out.c) -------------------------------------------------- */

/* A JSON string from bytes that should be UTF-8: invalid sequences become
 * U+FFFD so the output is always valid JSON. NULL gives JSON null. NULL
 * return only on allocation failure. */
json_t *anc_cli_json_str(const char *s);

/* Builders; each returns a new reference or NULL on allocation failure. */
json_t *anc_cli_info_json(const anc_info *info);
json_t *anc_cli_hits_json(const anc_hitlist *hl, const anc_provenance *prov);
json_t *anc_cli_resolved_json(const anc_resolved *r);
/* A passage's metadata (a msgpack map, as --meta-field stored it) as JSON;
 * NULL when there is none or it does not decode (cli_json.c). */
json_t *anc_cli_meta_json(const uint8_t *meta, uint32_t len);
/* The first key of obj that is not in allowed (NULL-terminated), or NULL:
 * input files refuse keys they do not know (a misspelt one would be
 * silently ignored). */
const char *anc_cli_json_unknown_key(json_t *obj,
                                     const char *const *allowed);
json_t *anc_cli_deleted_json(const anc_delete_result *d);

/* Print v compact on one line to fp and release it (v may be NULL, which
 * is ANC_ENOMEM). ANC_EIO when the write fails. */
int anc_cli_json_emit(FILE *fp, json_t *v, anc_error *err);

/* Human output. */
void anc_cli_info_print(FILE *fp, const anc_info *info);
void anc_cli_hits_print(FILE *fp, uint32_t qno, const anc_hitlist *hl,
                        const anc_provenance *prov, int with_text);
void anc_cli_resolved_print(FILE *fp, const anc_resolved *r);
void anc_cli_deleted_print(FILE *fp, const anc_delete_result *d);

/* ---- commands (cli_cmd.c, cli_load.c, cli_query.c) --------------------- */

typedef struct anc_cli_ctx {
	const char *server; /* URL */
	int json;           /* --json */
	int timeout_ms;
	const char *api_key;  /* --api-key / $ANCHORAGE_API_KEY, or NULL */
	const char *tls_ca;   /* --tls-ca / $ANCHORAGE_TLS_CA, or NULL */
	int usage_error;    /* set by a command when its error is a usage
	                       error (exit status 2 instead of 1) */
	anc_client *client; /* opened by anc_cli_connect, closed by main */
	const char *group;  /* "contract" while one of its subcommands runs:
	                       messages name "contract list", not "list" */
} anc_cli_ctx;

/* Open ctx->client unless already open. */
int anc_cli_connect(anc_cli_ctx *ctx, anc_error *err);

/* Each command gets the arguments after its name (argv[0] is the command
 * name itself, for messages) and returns a status. */
typedef int (*anc_cli_cmd_fn)(anc_cli_ctx *ctx, int argc, char **argv,
                              anc_error *err);

int anc_cli_cmd_info(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err);
int anc_cli_cmd_ping(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err);
int anc_cli_cmd_collection(anc_cli_ctx *ctx, int argc, char **argv,
                           anc_error *err);
int anc_cli_cmd_contract(anc_cli_ctx *ctx, int argc, char **argv,
                         anc_error *err);
int anc_cli_cmd_load(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err);
int anc_cli_cmd_query(anc_cli_ctx *ctx, int argc, char **argv,
                      anc_error *err);
int anc_cli_cmd_resolve(anc_cli_ctx *ctx, int argc, char **argv,
                        anc_error *err);
int anc_cli_cmd_delete(anc_cli_ctx *ctx, int argc, char **argv,
                       anc_error *err);
int anc_cli_cmd_assemble(anc_cli_ctx *ctx, int argc, char **argv,
                         anc_error *err);

/* Metric of contract id (16 hex) as listed by the server's info answer:
 * one info request. ANC_ENOCONTRACT when no collection lists it. */
int anc_cli_contract_metric(anc_cli_ctx *ctx, const char *id,
                            anc_metric *out, anc_error *err);

/* Option table of a command: a flag sets *flag to 1; an option with a
 * value (value != NULL) stores a pointer into argv. */
typedef struct anc_cli_optspec {
	const char *name;   /* "--batch", "-k" */
	const char **value; /* NULL for a flag */
	int *flag;
} anc_cli_optspec;

/* Scan argv[1..argc) (argv[0] is the command name): options may appear
 * anywhere, as "--name VALUE" or "--name=VALUE"; "--" ends them. Other
 * arguments go to pos (at most maxpos; more is a usage error). Unknown
 * options and missing values are usage errors. specs ends with a {NULL}
 * entry. */
int anc_cli_args_parse(anc_cli_ctx *ctx, int argc, char **argv,
                       const anc_cli_optspec *specs, const char **pos,
                       int maxpos, int *npos, anc_error *err);

/* Usage error helper: sets ctx->usage_error and fills err. */
int anc_cli_usage(anc_cli_ctx *ctx, anc_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Every value of the repeatable option name in argv[1..argc), in order
 * (anc_cli_args_parse keeps only the last): the options of specs that
 * take a value are skipped with it, and "--" ends the options. out has
 * room for argc entries; returns how many it got. */
uint32_t anc_cli_args_all(int argc, char **argv,
                          const anc_cli_optspec *specs, const char *name,
                          const char **out);

/* The opening every command shares (cli_cmd.c): anc_cli_args_parse, then
 * --help. specs holds {"--help", NULL, &flag}; when that flag is set after
 * parsing, usage goes to stdout and *helped is 1: the command has nothing
 * more to do and returns ANC_OK. Otherwise *helped is 0. Returns the
 * parse's usage error, if any. */
int anc_cli_args_help(anc_cli_ctx *ctx, int argc, char **argv,
                      const anc_cli_optspec *specs, const char **pos,
                      int maxpos, int *npos, const char *usage, int *helped,
                      anc_error *err);

/* The usage error "NAME: missing WHAT (see anchorage NAME --help)", as
 * anc_cli_usage (ctx->usage_error set, ANC_EINVAL). */
int anc_cli_missing(anc_cli_ctx *ctx, const char *name, const char *what,
                    anc_error *err);

#endif /* ANC_CLI_H */
