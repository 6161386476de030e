/*
 * cli_load.c — `anchorage load`: streaming, pipelined, resumable bulk
 * upsert.
 *
 * Design note
 * -----------
 * One pass, one thread, memory flat in the input size. Lines are read from
 * the JSONL (file, gzip or stdin; cli_input.c), checked one by one exactly
 * as the server would check them (fields, dimension, finite values, the
 * contract's norm rule, metadata size), and collected into a batch; a full
 * batch is encoded and handed to an anc_pipeline, which keeps up to
 * --inflight batches on the wire while the next one is parsed. The server
 * commits each batch in one LMDB transaction.
 *
 * Bad records. A line that fails a check is reported with file:line and
 * the reason, and written to --reject FILE. Up to --max-errors of them are
 * skipped; one more stops the load: the batch being filled is dropped
 * unsent, the batches already in flight (all made of earlier lines) are
 * waited for, and the checkpoint stays at the last acknowledged batch, so
 * nothing after it is half-applied.
 *
 * Checkpoints. Answers come back in submission order (anc_client.h), so
 * after the answer to batch k every batch before k is acknowledged too and
 * the input position at the end of batch k (line number and byte offset in
 * the uncompressed stream) is safe to record. The checkpoint file (JSON) is
 * replaced atomically: write FILE.XXXXXX (mkstemp), fsync, rename, fsync
 * the directory.
 * It also records what it is a checkpoint OF: the collection, the contract
 * ID, and a fingerprint of each input (SHA-256 of its first MiB and, for
 * regular files, its size). A resume with anything else is refused; a
 * matching one reads up to the recorded line (decompressing gzip: there is
 * no other way to seek in it), checks the byte offset, and carries on.
 * Because upserts are idempotent by anchor, batches acknowledged after the
 * last checkpoint write are simply re-sent and come back "unchanged".
 *
 * Row pairing. With --vectors, line i goes with row i of the vector file.
 * When both counts can be known up front (a plain JSONL file, counted with
 * one extra read of its bytes, and a .npy or plain .fvecs whose header or
 * size gives the rows) a mismatch is refused before anything is sent;
 * otherwise it is found when one input ends before the other.
 *
 * Duplicates. Two lines with the same (source, chunk) would race when they
 * are in different batches in flight together (the server may commit
 * concurrent batches in any order) and would make a re-run non-idempotent.
 * A set of the anchors of the last (inflight + 1) * batch records refuses
 * the second one as a bad record; that covers every pair that can be in
 * flight together while keeping memory bounded. Pairs further apart are
 * applied in file order (the later line wins). A resume rebuilds the set
 * by checking every line before the checkpoint again (load_skip), and the
 * checkpoint records the field flags and the --reject file's size, so a
 * resumed load refuses, keys and reports exactly what an uninterrupted one
 * would have.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LOAD_BATCH_BYTES (16u << 20)
#define LOAD_DEFAULT_BATCH 2048
#define LOAD_DEFAULT_INFLIGHT 4
#define LOAD_CKPT_INTERVAL 0.1   /* seconds between checkpoint writes */
#define LOAD_WARN_MAX 20         /* reject warnings printed on stderr */

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- anchor window: two generations of an open-addressing set --------- */

typedef struct win_slot {
	uint8_t raw[ANC_ANCHOR_RAW];
	uint64_t line; /* 0: empty */
} win_slot;

typedef struct win_gen {
	win_slot *slots;
	size_t n;
} win_gen;

typedef struct anchor_win {
	win_gen gen[2]; /* gen[cur] is filled; the other is the previous */
	int cur;
	size_t cap;     /* slots per generation, power of two */
	size_t limit;   /* records per generation */
} anchor_win;

static void
win_free(anchor_win *w)
{
	free(w->gen[0].slots);
	free(w->gen[1].slots);
	memset(w, 0, sizeof(*w));
}

static int
win_init(anchor_win *w, size_t limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit;
	for (w->cap = 16; w->cap < limit * 2; w->cap *= 2)
		;
	w->gen[0].slots = calloc(w->cap, sizeof(win_slot));
	w->gen[1].slots = calloc(w->cap, sizeof(win_slot));
	return w->gen[0].slots && w->gen[1].slots ? ANC_OK : ANC_ENOMEM;
}

static uint64_t
win_find(const win_gen *g, size_t cap, const uint8_t *raw)
{
	size_t h, j;

	memcpy(&h, raw, sizeof(h)); /* the anchor is already a hash */
	for (j = h & (cap - 1); g->slots[j].line != 0; j = (j + 1) & (cap - 1))
		if (memcmp(g->slots[j].raw, raw, ANC_ANCHOR_RAW) == 0)
			return g->slots[j].line;
	return 0;
}

/* Line of an earlier record with this anchor inside the window, else 0. */
static uint64_t
win_lookup(const anchor_win *w, const uint8_t *raw)
{
	uint64_t l = win_find(&w->gen[w->cur], w->cap, raw);

	return l != 0 ? l : win_find(&w->gen[!w->cur], w->cap, raw);
}

static void
win_add(anchor_win *w, const uint8_t *raw, uint64_t line)
{
	win_gen *g = &w->gen[w->cur];
	size_t h, j;

	if (g->n == w->limit) {
		w->cur = !w->cur;
		g = &w->gen[w->cur];
		memset(g->slots, 0, w->cap * sizeof(win_slot));
		g->n = 0;
	}
	memcpy(&h, raw, sizeof(h));
	for (j = h & (w->cap - 1); g->slots[j].line != 0;
	     j = (j + 1) & (w->cap - 1))
		;
	memcpy(g->slots[j].raw, raw, ANC_ANCHOR_RAW);
	g->slots[j].line = line;
	g->n++;
}

/* ---- state ----------------------------------------------------------------- */

/* What is remembered of a batch while it is in flight. */
typedef struct flight {
	uint32_t n;
	uint64_t *lineno;
	uint8_t (*anchors)[ANC_ANCHOR_RAW];
	uint64_t end_line;   /* input position after the batch */
	uint64_t end_offset;
	uint64_t rejected;   /* rejects up to end_line */
	int64_t reject_bytes; /* --reject file size up to end_line */
} flight;

typedef struct load_state {
	anc_cli_ctx *ctx;
	const char *collection;
	const char *path;      /* as given; "-" for stdin */
	const char *name;      /* for messages */
	const char *vpath;     /* --vectors, or NULL */
	anc_contract_id_str contract;
	uint32_t dim;
	int normalize;
	anc_metric metric;
	anc_cli_fields fields;
	uint32_t batch_max, inflight;
	uint64_t max_errors;
	int quiet;
	int vec_ignored_said; /* the warning of inline vectors ignored */
	/* The warnings of structured fields left out: once per named field
	 * (up to ANC_CLI_UNMAPPED_SAID names), once for unnamed ones. */
	char unmapped_said[ANC_CLI_UNMAPPED_SAID][sizeof(
	    ((anc_cli_line *)0)->unmapped[0])];
	uint32_t nunmapped_said;
	int unnamed_said;

	anc_cli_lines *in;
	anc_cli_vecs *vecs;
	anc_pipeline *pipe;
	anchor_win win;
	FILE *reject;

	/* the batch being filled */
	anc_cli_line *lines;
	anc_record *recs;
	float *vbuf;           /* batch_max * dim when --vectors */
	uint32_t nbatch;
	size_t batch_bytes;
	uint64_t batch_values;  /* bound on its msgpack values */
	flight cur;            /* its line numbers and anchors */
	flight *ring;          /* inflight entries, by batch number */
	uint64_t next_batch;   /* number of the next batch submitted */

	/* progress and totals */
	uint64_t lines_read, loaded, created, updated, unchanged, rejected;
	uint64_t acked_line, acked_offset, acked_rejected;
	/* rejected is counted over the whole load (--max-errors is), so a
	 * resumed load's summary says how many came before the checkpoint */
	uint64_t resume_rejected;
	int64_t acked_reject_bytes; /* -1: no --reject */
	struct stat reject_st;      /* the --reject file (a regular one?) */
	/* the checkpoint's --reject file (device, inode) and its size at
	 * the checkpoint; ckpt_reject_bytes -1: none recorded */
	uint64_t ckpt_reject_dev, ckpt_reject_ino;
	int64_t ckpt_reject_bytes;
	int ckpt_done;              /* the checkpoint's load had finished */
	mode_t umask;               /* the process's, for the checkpoint file */
	uint64_t resume_line, resume_offset;
	uint64_t total_lines;  /* 0: unknown */
	int warned;
	double t0, last_progress, last_ckpt;
	int tty, progress_shown;

	/* checkpoint */
	const char *ckpt;
	uint64_t last_ckpt_line;
	int failed;            /* a batch failed: the position is frozen */
} load_state;

/* ---- contract lookup ------------------------------------------------------ */

static int
load_find_contract(load_state *st, const char *want, anc_error *err)
{
	const anc_info *info;
	const anc_collection_info *ci = NULL;
	const anc_contract_info *k;
	anc_resp *resp = NULL;
	char nr[ANC_CNAME_MAX + ANC_REVISION_MAX + 2];
	uint32_t i;
	int code;

	if ((code = anc_client_info(st->ctx->client, &resp, err)))
		return code;
	info = &resp->u.info;
	for (i = 0; i < info->ncollections; i++)
		if (strcmp(info->collections[i].name, st->collection) == 0)
			ci = &info->collections[i];
	if (ci == NULL) {
		code = anc_error_set(err, ANC_ENOCOLL,
		    "collection '%s' does not exist (create it with: anchorage "
		    "collection create %s)", st->collection, st->collection);
		goto leave;
	}
	if (want == NULL || want[0] == '\0')
		want = ci->default_contract;
	if (want[0] == '\0') {
		code = anc_error_set(err, ANC_ENOCONTRACT,
		    "collection '%s' has no contract (register one with: "
		    "anchorage contract register %s FILE.json)", st->collection,
		    st->collection);
		goto leave;
	}
	for (i = 0; i < ci->ncontracts; i++) {
		k = &ci->contracts[i];
		snprintf(nr, sizeof(nr), "%s@%s", k->contract.name,
		    k->contract.revision);
		if (strcmp(k->id, want) == 0 || strcmp(nr, want) == 0) {
			memcpy(st->contract, k->id, sizeof(st->contract));
			st->dim = k->contract.dim;
			st->normalize = k->contract.normalize;
			st->metric = k->contract.metric;
			goto leave;
		}
	}
	code = anc_error_set(err, ANC_ENOCONTRACT,
	    "--contract: collection '%s' has no contract '%s' (see anchorage "
	    "info)", st->collection, want);
leave:
	anc_resp_free(resp);
	return code;
}

/* ---- checkpoints ------------------------------------------------------------ */

static json_t *
ckpt_input_json(const char *path, int64_t size, const char *sha)
{
	return json_pack("{s:o,s:o,s:s}", "path", anc_cli_json_str(path),
	    "size", size >= 0 ? json_integer(size) : json_null(),
	    "head_sha256", sha);
}

/* The field mapping: a resume that reads the lines another way would mix
 * records keyed two ways in one store. */
static json_t *
ckpt_fields_json(const anc_cli_fields *f)
{
	json_t *meta = json_array();

	for (uint32_t i = 0; meta != NULL && i < f->nmeta; i++)
		if (json_array_append_new(meta, anc_cli_json_str(f->meta[i]))) {
			/* a shorter list would record another mapping */
			json_decref(meta);
			return NULL;
		}
	return json_pack("{s:o,s:o,s:o,s:o,s:b,s:b,s:o}",
	    "source", anc_cli_json_str(f->source),
	    "chunk", anc_cli_json_str(f->chunk),
	    "text", anc_cli_json_str(f->text),
	    "vector", anc_cli_json_str(f->vector),
	    "chunk_explicit", f->chunk_explicit,
	    "text_explicit", f->text_explicit,
	    "meta", meta); /* NULL: json_pack fails, and so does the write */
}

/* Write the checkpoint atomically: tmp, fsync, rename, fsync dir. */
static int
ckpt_write(load_state *st, uint64_t line, uint64_t offset, int done,
           anc_error *err)
{
	char tmp[4096], dirbuf[4096];
	json_t *o;
	char *s = NULL;
	size_t len;
	int fd = -1, dfd, made = 0, code = ANC_OK;

	o = json_pack("{s:i,s:s,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:o,s:I,s:I,s:b}",
	    "anchorage_checkpoint", 1, "collection", st->collection,
	    "contract", st->contract, "input",
	    ckpt_input_json(st->path, anc_cli_lines_size(st->in),
	        anc_cli_lines_head_sha(st->in)),
	    "vectors", st->vecs != NULL
	        ? ckpt_input_json(st->vpath, anc_cli_vecs_size(st->vecs),
	              anc_cli_vecs_head_sha(st->vecs))
	        : json_null(),
	    "fields", ckpt_fields_json(&st->fields),
	    "line", (json_int_t)line, "offset", (json_int_t)offset,
	    "rejected", (json_int_t)st->acked_rejected,
	    "reject", st->acked_reject_bytes >= 0 &&
	              S_ISREG(st->reject_st.st_mode)
	        ? json_pack("{s:I,s:I,s:I}",
	              "dev", (json_int_t)st->reject_st.st_dev,
	              "ino", (json_int_t)st->reject_st.st_ino,
	              "bytes", (json_int_t)st->acked_reject_bytes)
	        : json_null(),
	    "batch", (json_int_t)st->batch_max,
	    "inflight", (json_int_t)st->inflight,
	    "done", done);
	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return anc_error_set(err, ANC_ENOMEM,
		    "--checkpoint %s: out of memory", st->ckpt);
	}
	json_decref(o);
	/* The rejects the checkpoint counts are on disk before it is. */
	if (st->reject != NULL && (fflush(st->reject) != 0 ||
	        fdatasync(fileno(st->reject)) != 0) && errno != EINVAL) {
		code = anc_error_set(err, ANC_EIO,
		    "--reject: cannot write: %s", strerror(errno));
		goto leave;
	}
	/* A name of its own (mkstemp), never an existing file: "CKPT.tmp"
	 * truncated whatever had that name, the input itself included. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", st->ckpt) >=
	    sizeof(tmp)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "--checkpoint: path too long");
		goto leave;
	}
	len = strlen(s);
	s[len++] = '\n'; /* json_dumps' NUL becomes the newline */
	if ((fd = mkstemp(tmp)) < 0) {
		code = anc_error_set(err, ANC_EIO,
		    "--checkpoint: cannot create a file next to %s: %s",
		    st->ckpt, strerror(errno));
		goto leave;
	}
	made = 1;
	/* mkstemp makes it 0600; a checkpoint gets the umask's usual mode */
	ssize_t wr = 0;
	errno = 0;
	if (fchmod(fd, 0666 & ~st->umask) != 0 ||
	    (wr = write(fd, s, len)) != (ssize_t)len || fsync(fd) != 0) {
		/* a short write leaves errno as it was: name it for what
		 * it is (a full disk, most likely) */
		code = wr >= 0 && (size_t)wr < len && errno == 0
		    ? anc_error_set(err, ANC_EIO, "--checkpoint: cannot write "
		          "%s: short write (%zd of %zu bytes)", tmp, wr, len)
		    : anc_error_set(err, ANC_EIO, "--checkpoint: cannot "
		          "write %s: %s", tmp, strerror(errno));
		goto leave;
	}
	if (close(fd) != 0) {
		fd = -1;
		code = anc_error_set(err, ANC_EIO,
		    "--checkpoint: cannot write %s: %s", tmp, strerror(errno));
		goto leave;
	}
	fd = -1;
	if (rename(tmp, st->ckpt) != 0) {
		code = anc_error_set(err, ANC_EIO,
		    "--checkpoint: cannot rename %s to %s: %s", tmp, st->ckpt,
		    strerror(errno));
		goto leave;
	}
	/* The rename is durable only once the directory is synced. */
	snprintf(dirbuf, sizeof(dirbuf), "%s", st->ckpt);
	if ((dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY)) >= 0) {
		(void)fsync(dfd); /* best effort: some file systems refuse */
		(void)close(dfd);
	}
	made = 0;
	st->last_ckpt_line = line;
leave:
	if (fd >= 0)
		(void)close(fd); /* already failing */
	if (made)
		(void)unlink(tmp); /* already failing */
	free(s);
	return code;
}

static int
ckpt_match_input(const char *ck, json_t *o, const char *what,
                 const char *path, int64_t size, const char *sha,
                 anc_error *err)
{
	json_t *js = json_object_get(o, "size");
	json_t *jh = json_object_get(o, "head_sha256");
	json_t *jp = json_object_get(o, "path");
	int64_t csize = json_is_integer(js) ? json_integer_value(js) : -1;

	if (!json_is_string(jh))
		return anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: %s.head_sha256: missing", ck, what);
	if (csize != size || strcmp(json_string_value(jh), sha) != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "--checkpoint %s was written for another %s: %s (size %lld, "
		    "sha256 of first MiB %.16s...), this load reads %s (size "
		    "%lld, %.16s...); refusing to resume (remove the checkpoint "
		    "to start over)", ck, what,
		    json_is_string(jp) ? json_string_value(jp) : "?",
		    (long long)csize, json_string_value(jh), path,
		    (long long)size, sha);
	return ANC_OK;
}

/* Read the checkpoint if it exists and check it belongs to this load.
 * *found 0: no checkpoint yet (a fresh load). */
static int
ckpt_read(load_state *st, int *found, anc_error *err)
{
	json_error_t je;
	json_t *o = NULL, *v;
	struct stat sb;
	const char *ck = st->ckpt;
	int code = ANC_OK;

	*found = 0;
	if (stat(ck, &sb) != 0) {
		if (errno == ENOENT)
			return ANC_OK;
		return anc_error_set(err, ANC_EIO, "--checkpoint %s: %s", ck,
		    strerror(errno));
	}
	if (!S_ISREG(sb.st_mode))
		return anc_error_set(err, ANC_EINVAL, "--checkpoint %s: %s, "
		    "expected a checkpoint file (or a path where none exists "
		    "yet)", ck, S_ISDIR(sb.st_mode) ? "a directory"
		    : "not a regular file");
	if ((o = json_load_file(ck, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: not a checkpoint file: line %d: %s", ck,
		    je.line, je.text);
	v = json_object_get(o, "anchorage_checkpoint");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: anchorage_checkpoint: expected 1", ck);
		goto leave;
	}
	v = json_object_get(o, "collection");
	if (!json_is_string(v) || strcmp(json_string_value(v),
	        st->collection) != 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "--checkpoint %s: collection: written for '%s', this load is "
		    "into '%s'; refusing to resume", ck,
		    json_is_string(v) ? json_string_value(v) : "?",
		    st->collection);
		goto leave;
	}
	v = json_object_get(o, "contract");
	if (!json_is_string(v) || strcmp(json_string_value(v),
	        st->contract) != 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "--checkpoint %s: contract: written for %s, this load uses "
		    "%s; refusing to resume", ck,
		    json_is_string(v) ? json_string_value(v) : "?",
		    st->contract);
		goto leave;
	}
	v = json_object_get(o, "input");
	if (!json_is_object(v)) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: input: missing", ck);
		goto leave;
	}
	if ((code = ckpt_match_input(ck, v, "input", st->name,
	         anc_cli_lines_size(st->in), anc_cli_lines_head_sha(st->in),
	         err)))
		goto leave;
	v = json_object_get(o, "vectors");
	if ((st->vecs == NULL) != (v == NULL || json_is_null(v))) {
		code = anc_error_set(err, ANC_EINVAL,
		    "--checkpoint %s: vectors: written for a load %s --vectors, "
		    "this one is %s; refusing to resume", ck,
		    st->vecs ? "without" : "with", st->vecs ? "with" :
		    "without");
		goto leave;
	}
	if (st->vecs != NULL && (code = ckpt_match_input(ck, v, "vectors file",
	         st->vpath, anc_cli_vecs_size(st->vecs),
	         anc_cli_vecs_head_sha(st->vecs), err)))
		goto leave;
	if (!json_is_integer(json_object_get(o, "line")) ||
	    !json_is_integer(json_object_get(o, "offset")) ||
	    json_integer_value(json_object_get(o, "line")) < 0 ||
	    json_integer_value(json_object_get(o, "offset")) < 0) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: line/offset: expected non-negative "
		    "integers", ck);
		goto leave;
	}
	st->resume_line = (uint64_t)json_integer_value(json_object_get(o,
	    "line"));
	st->resume_offset = (uint64_t)json_integer_value(json_object_get(o,
	    "offset"));
	v = json_object_get(o, "rejected");
	/* at most one rejection per line read; absent in older files */
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0 ||
	                  (uint64_t)json_integer_value(v) > st->resume_line)) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "--checkpoint %s: rejected: expected an integer 0..%llu (the "
		    "lines read), got %s", ck,
		    (unsigned long long)st->resume_line,
		    json_is_integer(v) ? "a number out of that range"
		                       : "another type");
		goto leave;
	}
	st->acked_rejected = v != NULL ? (uint64_t)json_integer_value(v) : 0;
	/* absent in older files: nothing to compare */
	v = json_object_get(o, "fields");
	if (v != NULL) {
		json_t *now = ckpt_fields_json(&st->fields);
		int same = now != NULL && json_equal(v, now);
		json_decref(now);
		if (!same) {
			char *was = json_dumps(v, JSON_COMPACT);
			code = anc_error_set(err, ANC_EINVAL,
			    "--checkpoint %s: written by a load that read the "
			    "lines with other field flags (%s); this one would "
			    "key or fill records differently: use the same "
			    "--source-field, --chunk-field, --text-field, "
			    "--vector-field and --meta-field, or remove the "
			    "checkpoint to start over", ck, was ? was : "?");
			free(was);
			goto leave;
		}
	}
	st->ckpt_done = json_is_true(json_object_get(o, "done"));
	/* The duplicate window is (inflight + 1) x batch records: other
	 * values would refuse other lines than the interrupted load did.
	 * (Absent in older files; a finished load has nothing left.) */
	if (!st->ckpt_done) {
		static const char *const kn[2] = {"batch", "inflight"};
		uint32_t now[2] = {st->batch_max, st->inflight};
		for (int k = 0; k < 2; k++) {
			v = json_object_get(o, kn[k]);
			if (v != NULL && (!json_is_integer(v) ||
			                  json_integer_value(v) != now[k])) {
				code = anc_error_set(err, ANC_EINVAL,
				    "--checkpoint %s: written by a load with "
				    "--%s %lld, this one has %u: resume with the "
				    "same --batch and --inflight (they set which "
				    "repeated lines are refused), or remove the "
				    "checkpoint to start over", ck, kn[k],
				    json_is_integer(v)
				        ? (long long)json_integer_value(v) : -1LL,
				    now[k]);
				goto leave;
			}
		}
	}
	v = json_object_get(o, "reject");
	st->ckpt_reject_bytes = -1;
	if (json_is_object(v) &&
	    json_is_integer(json_object_get(v, "dev")) &&
	    json_is_integer(json_object_get(v, "ino")) &&
	    json_is_integer(json_object_get(v, "bytes")) &&
	    json_integer_value(json_object_get(v, "bytes")) >= 0) {
		st->ckpt_reject_dev =
		    (uint64_t)json_integer_value(json_object_get(v, "dev"));
		st->ckpt_reject_ino =
		    (uint64_t)json_integer_value(json_object_get(v, "ino"));
		st->ckpt_reject_bytes =
		    json_integer_value(json_object_get(v, "bytes"));
	}
	*found = 1;
leave:
	json_decref(o);
	return code;
}

static int line_check(load_state *st, const char *line, size_t len,
                      uint64_t lineno, anc_cli_line *l, const float *vec,
                      uint8_t raw[ANC_ANCHOR_RAW], int *bad,
                      anc_error *why);

/* Read up to the checkpoint's position. Every line on the way is checked
 * again, nothing is sent: the duplicate window must hold what it held
 * there, or a line repeating one from before the checkpoint would be
 * taken as an update where a load without the interruption refused it
 * (a bad-input hunt found the two stores differing). */
static int
load_skip(load_state *st, anc_error *err)
{
	const char *line;
	size_t len;
	float *row = NULL;
	int eof, bad, code = ANC_OK;
	uint64_t i;
	anc_cli_line l;
	anc_error why;
	uint8_t raw[ANC_ANCHOR_RAW];

	if (st->vecs != NULL &&
	    (row = malloc((size_t)st->dim * sizeof(float))) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "out of memory");
	for (i = 0; i < st->resume_line; i++) {
		int toolong = 0;
		code = anc_cli_lines_next(st->in, &line, &len, err);
		if (code == ANC_ETOOBIG && line != NULL)
			toolong = 1; /* a bad line, not a window entry */
		else if (code != ANC_OK)
			goto leave;
		code = ANC_OK;
		if (line == NULL) {
			code = anc_error_set(err, ANC_EINVAL,
			    "--checkpoint %s: line %llu is past the end of %s "
			    "(%llu lines)", st->ckpt,
			    (unsigned long long)st->resume_line, st->name,
			    (unsigned long long)i);
			goto leave;
		}
		if (st->vecs != NULL) {
			if ((code = anc_cli_vecs_next(st->vecs, row, &eof, err)))
				goto leave;
			if (eof) {
				code = anc_error_set(err, ANC_EINVAL,
				    "%s: fewer rows (%llu) than the checkpoint's "
				    "line %llu", st->vpath,
				    (unsigned long long)i,
				    (unsigned long long)st->resume_line);
				goto leave;
			}
		}
		memset(&l, 0, sizeof l);
		/* a finished load has nothing after its checkpoint */
		if (!toolong && !st->ckpt_done &&
		    (code = line_check(st, line, len, i + 1, &l, row, raw, &bad,
		         &why)) != ANC_OK) {
			*err = why;
			goto leave;
		}
		anc_cli_line_clear(&l);
	}
	if (anc_cli_lines_offset(st->in) != st->resume_offset)
		code = anc_error_set(err, ANC_EINVAL,
		    "--checkpoint %s: line %llu should end at byte %llu of %s, "
		    "it ends at %llu: the input changed; refusing to resume",
		    st->ckpt, (unsigned long long)st->resume_line,
		    (unsigned long long)st->resume_offset, st->name,
		    (unsigned long long)anc_cli_lines_offset(st->in));
leave:
	free(row);
	st->lines_read = st->resume_line;
	st->acked_line = st->resume_line;
	st->acked_offset = anc_cli_lines_offset(st->in);
	return code;
}

/* ---- progress ---------------------------------------------------------------- */

static void
progress_emit(load_state *st, int final)
{
	double t = now_s(), el = t - st->t0, rate, mbs, frac = -1, eta = -1;
	uint64_t off = anc_cli_lines_offset(st->in);
	uint64_t raw = anc_cli_lines_raw_offset(st->in);
	int64_t size = anc_cli_lines_size(st->in);
	json_t *o;
	char *s;

	if (st->quiet)
		return;
	if (!final) {
		double every = st->ctx->json ? 1.0 : st->tty ? 0.25 : 5.0;

		if (t - st->last_progress < every)
			return;
	}
	st->last_progress = t;
	if (el <= 0)
		el = 1e-9;
	rate = (double)(st->loaded) / el;
	if (st->total_lines > 0)
		frac = (double)st->lines_read / (double)st->total_lines;
	else if (size > 0)
		frac = (double)(anc_cli_lines_gzip(st->in) ? raw : off) /
		    (double)size;
	/* Bytes read from both inputs (uncompressed), for MB/s. */
	if (st->vecs != NULL)
		off += (anc_cli_vecs_row(st->vecs) - st->resume_line) *
		    (uint64_t)st->dim * 4;
	mbs = (double)(off - st->resume_offset) / el / 1e6;
	if (frac > 1)
		frac = 1;
	if (frac > 0 && st->lines_read > st->resume_line)
		eta = el * (1 - frac) /
		    (frac - (st->total_lines > 0 ? (double)st->resume_line /
		        (double)st->total_lines : 0) + 1e-12);
	if (eta < 0 && frac >= 0)
		eta = -1;
	if (st->ctx->json) {
		o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "event",
		    final ? "done" : "progress", "records",
		    (json_int_t)st->lines_read, "loaded",
		    (json_int_t)st->loaded, "rejected",
		    (json_int_t)st->rejected, "bytes", (json_int_t)off,
		    "elapsed", el, "records_per_s", rate, "mb_per_s", mbs);
		if (o != NULL) {
			json_object_set_new(o, "percent", frac >= 0
			    ? json_real(100 * frac) : json_null());
			json_object_set_new(o, "eta_s", eta >= 0
			    ? json_real(eta) : json_null());
			if ((s = json_dumps(o, JSON_COMPACT)) != NULL) {
				fprintf(stderr, "%s\n", s);
				free(s);
			}
			json_decref(o);
		}
		return;
	}
	if (st->tty)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s%llu records, %llu loaded, %.0f rec/s, %.1f MB/s",
	    st->tty ? "" : "anchorage: load: ",
	    (unsigned long long)st->lines_read, (unsigned long long)st->loaded,
	    rate, mbs);
	if (frac >= 0)
		fprintf(stderr, ", %.0f%%", 100 * frac);
	if (eta >= 0 && !final)
		fprintf(stderr, ", ETA %d:%02d", (int)eta / 60, (int)eta % 60);
	fprintf(stderr, ", %llu rejected", (unsigned long long)st->rejected);
	if (!st->tty || final)
		fputc('\n', stderr);
	st->progress_shown = !final && st->tty;
	fflush(stderr);
}

/* Clear the live line before printing something else on stderr. */
static void
progress_clear(load_state *st)
{
	if (st->progress_shown) {
		fputs("\r\033[K", stderr);
		st->progress_shown = 0;
	}
}

/* Warn of the structured fields of l that no flag reads: once per field
 * name, once for the names not fit to print, and once when there are more
 * names than the loader keeps. */
static void
unmapped_warn(load_state *st, const anc_cli_line *l, uint64_t lineno)
{
	for (uint32_t i = 0; i < l->nunmapped; i++) {
		const char *k = l->unmapped[i];
		uint32_t j;

		if (st->nunmapped_said > ANC_CLI_UNMAPPED_SAID)
			break; /* said that the rest go unnamed */
		for (j = 0; j < st->nunmapped_said; j++)
			if (strcmp(st->unmapped_said[j], k) == 0)
				break;
		if (j < st->nunmapped_said)
			continue;
		progress_clear(st);
		if (st->nunmapped_said == ANC_CLI_UNMAPPED_SAID) {
			fprintf(stderr, "anchorage: warning: %s:%llu: more "
			    "than %d fields holding structured data are not "
			    "loaded (the rest are not named)\n", st->name,
			    (unsigned long long)lineno, ANC_CLI_UNMAPPED_SAID);
			st->nunmapped_said++;
			continue;
		}
		memcpy(st->unmapped_said[st->nunmapped_said++], k,
		    strlen(k) + 1);
		fprintf(stderr, "anchorage: warning: %s:%llu: field \"%s\" "
		    "(structured data) is not loaded; --meta-field %s keeps it "
		    "in the passage's metadata (said once per field)\n",
		    st->name, (unsigned long long)lineno, k, k);
	}
	if (l->unmapped_unnamed && !st->unnamed_said) {
		st->unnamed_said = 1;
		progress_clear(st);
		fprintf(stderr, "anchorage: warning: %s:%llu: a field holding "
		    "structured data is not loaded; --meta-field NAME keeps "
		    "one in the passage's metadata (said once)\n", st->name,
		    (unsigned long long)lineno);
	}
}

/* ---- bad records ---------------------------------------------------------------- */

/* Record a bad line. Returns ANC_OK when the load may go on, else the
 * error's code with err describing the stop. */
static int
load_reject(load_state *st, uint64_t lineno, const char *line, size_t len,
            anc_error *why, anc_error *err)
{
	json_t *o;
	char *s;

	st->rejected++;
	if (st->reject != NULL) {
		json_t *rec = json_stringn(line, len);

		/* Not UTF-8 (or an embedded NUL): keep what can be shown. */
		if (rec == NULL)
			rec = anc_cli_json_str(line);
		o = json_pack("{s:I,s:o,s:o}", "line", (json_int_t)lineno,
		    "reason", anc_cli_json_str(why->msg), "record", rec);
		if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
			json_decref(o);
			return anc_error_set(err, ANC_ENOMEM,
			    "--reject: out of memory");
		}
		json_decref(o);
		if (fprintf(st->reject, "%s\n", s) < 0 ||
		    fflush(st->reject) != 0) {
			free(s);
			return anc_error_set(err, ANC_EIO,
			    "--reject: cannot write: %s", strerror(errno));
		}
		free(s);
	}
	if (st->rejected > st->max_errors) {
		anc_error_set(err, why->code, "%s:%llu: %s (stopped: more than "
		    "%llu bad record%s)", st->name, (unsigned long long)lineno,
		    why->msg, (unsigned long long)st->max_errors,
		    st->max_errors == 1 ? "" : "s");
		return why->code;
	}
	if (!st->quiet && st->warned < LOAD_WARN_MAX) {
		progress_clear(st);
		fprintf(stderr, "anchorage: warning: %s:%llu: %s: %s\n",
		    st->name, (unsigned long long)lineno,
		    anc_errname(why->code), why->msg);
		if (++st->warned == LOAD_WARN_MAX)
			fprintf(stderr, "anchorage: warning: further bad "
			    "records are only counted%s\n",
			    st->reject ? " and written to --reject" : "");
	}
	return ANC_OK;
}

/* ---- batches -------------------------------------------------------------------- */

static void
batch_clear(load_state *st)
{
	uint32_t i;

	for (i = 0; i < st->nbatch; i++)
		anc_cli_line_clear(&st->lines[i]);
	st->nbatch = 0;
	st->batch_bytes = 0;
	st->batch_values = 0;
}

/* The answer to the oldest batch in flight. */
static int
load_collect(load_state *st, anc_error *err)
{
	anc_resp *resp = NULL;
	anc_anchor_str mine;
	const anc_upsert_result *r;
	uint64_t tag = 0;
	flight *f;
	json_t *o;
	uint32_t i;
	int code;

	code = anc_pipeline_wait(st->pipe, &tag, &resp, err);
	f = &st->ring[tag % st->inflight];
	if (code != ANC_OK) {
		st->failed = 1;
		anc_cli_error_strip_name(err);
		anc_error_wrap(err, "batch of %s:%llu-%llu", st->name,
		    (unsigned long long)f->lineno[0],
		    (unsigned long long)f->lineno[f->n - 1]);
		goto leave;
	}
	if (resp->u.upsert.n != f->n) {
		st->failed = 1;
		code = anc_error_set(err, ANC_EMALFORMED,
		    "upsert reply for %s:%llu-%llu: expected %u results, got %u",
		    st->name, (unsigned long long)f->lineno[0],
		    (unsigned long long)f->lineno[f->n - 1], f->n,
		    resp->u.upsert.n);
		goto leave;
	}
	for (i = 0; i < f->n; i++) {
		r = &resp->u.upsert.results[i];
		anc_anchor_format(f->anchors[i], mine);
		if (strcmp(mine, r->anchor) != 0) {
			st->failed = 1;
			code = anc_error_set(err, ANC_EINTERNAL,
			    "%s:%llu: server returned anchor %s, expected %s",
			    st->name, (unsigned long long)f->lineno[i],
			    r->anchor, mine);
			goto leave;
		}
		st->loaded++;
		st->created += r->status == ANC_UPSERT_CREATED;
		st->updated += r->status == ANC_UPSERT_UPDATED;
		st->unchanged += r->status == ANC_UPSERT_UNCHANGED;
		if (st->ctx->json) {
			o = json_pack("{s:I,s:s,s:s,s:I}", "line",
			    (json_int_t)f->lineno[i], "anchor", r->anchor,
			    "status", anc_upsert_status_name(r->status),
			    "revision", (json_int_t)r->revision);
			if ((code = anc_cli_json_emit(stdout, o, err)))
				goto leave;
		}
	}
	/* Every earlier batch is acknowledged too (answers come in order),
	 * unless one of them failed: then the position stays before it. */
	if (st->failed)
		goto leave;
	st->acked_line = f->end_line;
	st->acked_offset = f->end_offset;
	st->acked_rejected = f->rejected;
	st->acked_reject_bytes = f->reject_bytes;
	if (st->ckpt != NULL && now_s() - st->last_ckpt >= LOAD_CKPT_INTERVAL) {
		if ((code = ckpt_write(st, st->acked_line, st->acked_offset, 0,
		         err)))
			goto leave;
		st->last_ckpt = now_s();
	}
	code = ANC_OK;
leave:
	anc_resp_free(resp);
	return code;
}

/* Send the batch being filled (if any). */
static int
load_send(load_state *st, anc_error *err)
{
	flight *f;
	uint64_t *tl;
	uint8_t (*ta)[ANC_ANCHOR_RAW];
	int code;

	if (st->nbatch == 0)
		return ANC_OK;
	if (anc_pipeline_pending(st->pipe) == st->inflight &&
	    (code = load_collect(st, err)))
		return code;
	if ((code = anc_pipeline_upsert(st->pipe, st->collection, st->contract,
	         st->recs, st->nbatch, st->next_batch, err))) {
		anc_error_wrap(err, "%s:%llu-%llu", st->name,
		    (unsigned long long)st->cur.lineno[0],
		    (unsigned long long)st->cur.lineno[st->nbatch - 1]);
		return code;
	}
	/* Swap the filled arrays into the ring entry of this batch. */
	f = &st->ring[st->next_batch % st->inflight];
	tl = f->lineno;
	ta = f->anchors;
	f->lineno = st->cur.lineno;
	f->anchors = st->cur.anchors;
	f->n = st->nbatch;
	f->end_line = anc_cli_lines_lineno(st->in);
	f->end_offset = anc_cli_lines_offset(st->in);
	f->rejected = st->rejected;
	f->reject_bytes = st->reject != NULL ? (int64_t)ftello(st->reject) : -1;
	st->cur.lineno = tl;
	st->cur.anchors = ta;
	st->next_batch++;
	batch_clear(st);
	return ANC_OK;
}

/* The checks of one line, made as the server would make them, then the
 * duplicate window. *bad 0: the line goes into a batch, its anchor is in
 * raw and now in the window, l holds the parsed line. *bad 1: a bad
 * record, why says why, l is cleared. Another return is a failure of the
 * load itself (err). vec: the line's row from --vectors, or NULL (the
 * vector is in the line). */
static int
line_check(load_state *st, const char *line, size_t len, uint64_t lineno,
           anc_cli_line *l, const float *vec, uint8_t raw[ANC_ANCHOR_RAW],
           int *bad, anc_error *why)
{
	anc_anchor_str a;
	uint64_t first;
	double norm, norm2 = 0;
	int code;

	*bad = 1;
	anc_error_clear(why);
	if (len == 0 || strspn(line, " \t") == len) {
		anc_error_set(why, ANC_EMALFORMED,
		    "empty line (JSONL: one object per line)");
		return ANC_OK;
	}
	if (anc_cli_line_parse(line, len, &st->fields, st->dim, l, why))
		return ANC_OK;
	if (l->vec_ignored && !st->vec_ignored_said) {
		/* not an error: a corpus file with one model's vectors
		 * inline, loaded with another's from --vectors (a
		 * migration), is normal; a silent choice is not */
		st->vec_ignored_said = 1;
		if (!st->quiet) {
			progress_clear(st);
			fprintf(stderr, "anchorage: warning: %s:%llu: the line has "
			    "a vector field \"%s\"; with --vectors the vectors "
			    "come from %s (row i for line i) and inline ones are "
			    "ignored (said once)\n", st->name,
			    (unsigned long long)lineno, st->fields.vector,
			    st->vpath);
		}
	}
	if (l->unmapped_any && !st->quiet)
		unmapped_warn(st, l, lineno);
	if (vec == NULL)
		vec = l->vec;
	/* NaN/Inf and a norm whose distances overflow float32, for inline
	 * vectors as for file rows: a bad line, not a refused batch */
	if (anc_vector_check_norm2(vec, st->dim, &norm2, why) != ANC_OK) {
		if (st->vecs != NULL)
			anc_error_wrap(why, "%s row %llu", st->vpath,
			    (unsigned long long)(lineno - 1));
		else
			anc_error_wrap(why, "vector field \"%s\"",
			    st->fields.vector);
		goto bad;
	}
	norm = sqrt(norm2);
	if (st->normalize && fabs(norm - 1.0) > ANC_NORM_TOLERANCE) {
		anc_error_set(why, ANC_EVIOLATION,
		    "vector: contract %s requires unit vectors (|norm - 1| <= "
		    "%g), this one has norm %.6g", st->contract,
		    (double)ANC_NORM_TOLERANCE, norm);
		goto bad;
	}
	if (st->metric == ANC_METRIC_COSINE && !(norm > 0.0)) {
		anc_error_set(why, ANC_EVIOLATION,
		    "vector: contract %s is cosine; this is the zero vector",
		    st->contract);
		goto bad;
	}
	if ((code = anc_anchor_compute(st->collection, l->source, l->chunk,
	         raw)) != ANC_OK) {
		anc_cli_line_clear(l);
		return anc_error_set(why, code, "%s:%llu: out of memory",
		    st->name, (unsigned long long)lineno);
	}
	if ((first = win_lookup(&st->win, raw)) != 0) {
		anc_anchor_format(raw, a);
		anc_error_set(why, ANC_EINVAL,
		    "same source '%.200s' and chunk '%.200s' as line %llu "
		    "(anchor %s); every line needs its own chunk key (is "
		    "--chunk-field right?)", l->source, l->chunk,
		    (unsigned long long)first, a);
		goto bad;
	}
	win_add(&st->win, raw, lineno);
	*bad = 0;
	return ANC_OK;
bad:
	anc_cli_line_clear(l);
	return ANC_OK;
}

/* With --vectors, the row of line lineno into the batch's next slot
 * (*vec; NULL without --vectors). It is read whatever becomes of the
 * line, so that line i and row i stay paired. */
static int
line_row(load_state *st, uint64_t lineno, float **vec, anc_error *err)
{
	int eof, code;

	*vec = NULL;
	if (st->vecs == NULL)
		return ANC_OK;
	*vec = st->vbuf + (size_t)st->nbatch * st->dim;
	if ((code = anc_cli_vecs_next(st->vecs, *vec, &eof, err)))
		return code;
	if (eof)
		return anc_error_set(err, ANC_EINVAL,
		    "%s:%llu: %s has no row %llu: expected one vector per "
		    "line", st->name, (unsigned long long)lineno, st->vpath,
		    (unsigned long long)(lineno - 1));
	return ANC_OK;
}

/* Check one line and add it to the batch, or reject it. */
static int
load_line(load_state *st, const char *line, size_t len, anc_error *err)
{
	uint64_t lineno = anc_cli_lines_lineno(st->in);
	anc_cli_line *l = &st->lines[st->nbatch];
	anc_record *r = &st->recs[st->nbatch];
	float *vec = NULL;
	anc_error why;
	uint8_t raw[ANC_ANCHOR_RAW];
	int bad, code;

	st->lines_read++;
	if ((code = line_row(st, lineno, &vec, err)))
		return code;
	if ((code = line_check(st, line, len, lineno, l, vec, raw, &bad,
	         &why)) != ANC_OK) {
		*err = why;
		return code;
	}
	if (bad)
		return load_reject(st, lineno, line, len, &why, err);
	memset(r, 0, sizeof(*r));
	r->source = l->source;
	r->chunk = l->chunk;
	r->text = l->text;
	r->meta = l->meta;
	r->meta_len = l->meta_len;
	r->vec = vec != NULL ? vec : l->vec;
	r->dim = st->dim;
	memcpy(st->cur.anchors[st->nbatch], raw, ANC_ANCHOR_RAW);
	st->cur.lineno[st->nbatch] = lineno;
	st->nbatch++;
	st->batch_bytes += (size_t)st->dim * 4 + strlen(l->source) +
	    strlen(l->chunk) + (l->text ? strlen(l->text) : 0) + l->meta_len +
	    64;
	/* msgpack values: 16 a record at most, and at most one per byte of
	 * its metadata. The batch goes once it reaches half the server's
	 * bound; before this record it was under that half, and one record
	 * adds at most 16 + max_meta (64 KiB): far from the whole bound. */
	st->batch_values += 16 + (uint64_t)l->meta_len;
	if (st->nbatch == st->batch_max || st->batch_bytes >= LOAD_BATCH_BYTES ||
	    st->batch_values >= ANC_REQ_VALUES_MAX / 2)
		return load_send(st, err);
	return ANC_OK;
}

/* A line longer than ANC_CLI_LINE_MAX, read to its end by the reader
 * (err says so; line is its start): a bad record like any other, so that
 * --max-errors decides. Its vector row is read to keep the pairing. */
static int
load_long_line(load_state *st, const char *line, size_t len, anc_error *err)
{
	uint64_t lineno = anc_cli_lines_lineno(st->in);
	const char *m = strstr(err->msg, ": line of ");
	float *vec;
	anc_error why;
	int code;

	anc_error_set(&why, ANC_ETOOBIG, "%s (the record here is its first "
	    "%zu bytes)", m != NULL ? m + 2 : err->msg, len);
	anc_error_clear(err);
	st->lines_read++;
	if ((code = line_row(st, lineno, &vec, err)))
		return code;
	return load_reject(st, lineno, line, len, &why, err);
}

/* Wait for everything in flight; the first error wins. */
static int
load_drain(load_state *st, int code, anc_error *err)
{
	anc_error e2;
	int c2;

	while (anc_pipeline_pending(st->pipe) > 0) {
		if (code == ANC_OK) {
			code = load_collect(st, err);
		} else if ((c2 = load_collect(st, &e2)) != ANC_OK) {
			(void)c2; /* the first error is the one reported */
		}
	}
	return code;
}

static const char load_usage[] =
    "usage: anchorage load COLLECTION FILE.jsonl|- [--contract ID|NAME@REV]\n"
    "          [--vectors FILE.fvecs|FILE.npy] [--source-field F]\n"
    "          [--chunk-field F] [--text-field F] [--vector-field F]\n"
    "          [--meta-field F]... [--batch N] [--inflight N]\n"
    "          [--checkpoint FILE] [--reject FILE] [--max-errors N] "
    "[--quiet]\n\n"
    "Upsert one record per JSONL line (\"-\" reads stdin; gzip input is "
    "read\ntransparently). Fields (defaults): source (\"source\"), chunk "
    "(\"chunk\"; missing\nmeans \"\" unless --chunk-field is given), text "
    "(\"text\"), vector (\"vector\", an\narray of numbers). With --vectors, "
    "row i of the .fvecs or .npy (2-D '<f4', C\norder) file is the vector "
    "of line i. --meta-field F (repeatable) stores field F\nin the passage's "
    "metadata, keeping its JSON type.\n\n"
    "--batch records per request (default 2048), --inflight requests on the "
    "wire at\nonce (default 4). Each line is checked before its batch is "
    "sent; a bad line is\nreported as FILE:LINE and written to --reject "
    "FILE as {\"line\",\"reason\",\"record\"}.\nMore than --max-errors bad "
    "lines (default 0) stops the load: nothing after the\nlast "
    "acknowledged batch is sent.\n\n"
    "--checkpoint FILE records the input position after acknowledged "
    "batches\n(at most every 0.1 s, and at the end); re-running the same "
    "command continues\nfrom there, and records acknowledged after the "
    "position come back \"unchanged\".\nRe-running a finished load reads "
    "nothing. Without --checkpoint, re-running a\nload changes nothing "
    "(records come back \"unchanged\").\n\n"
    "Progress goes to stderr (a live line on a terminal, a line every 5 s "
    "otherwise,\nJSON events with --json); --quiet silences it. The summary "
    "goes to stdout;\nwith --json, stdout has one line per record first "
    "({\"line\",\"anchor\",\"status\",\n\"revision\"}), then the summary "
    "object.\n";

/* Does the file start with gzip's magic? */
static int
is_gzip(const char *path)
{
	unsigned char m[2];
	FILE *f = fopen(path, "rb");
	int gz = f != NULL && fread(m, 1, 2, f) == 2 && m[0] == 0x1f &&
	         m[1] == 0x8b;
	if (f != NULL)
		fclose(f);
	return gz;
}

/* Read every row of a vector file (see the caller); *rows gets their
 * number. */
static int
vecs_prescan(const char *path, uint32_t dim, int64_t *rows, anc_error *err)
{
	anc_cli_vecs *v = NULL;
	float *row;
	int code, eof = 0;

	if ((row = malloc((size_t)dim * sizeof *row)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "%s: out of memory", path);
	if ((code = anc_cli_vecs_open(path, &v, err)) == ANC_OK)
		while ((code = anc_cli_vecs_next(v, row, &eof, err)) == ANC_OK &&
		       !eof)
			;
	if (code == ANC_OK)
		*rows = (int64_t)anc_cli_vecs_row(v);
	anc_cli_vecs_close(v);
	free(row);
	return code;
}

/* Do paths a and b name one existing file (or the same path)? */
static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (strcmp(a, b) == 0)
		return 1;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int
anc_cli_cmd_load(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *contract = NULL, *batch = NULL, *inflight = NULL;
	const char *sf = NULL, *cf = NULL, *tf = NULL, *vf = NULL;
	const char *maxerr = NULL, *reject = NULL, *mf = NULL;
	const char *ckpt = NULL, *vectors = NULL;
	int want_help = 0, quiet = 0;
	const anc_cli_optspec specs[] = {
		{"--contract", &contract, NULL}, {"--vectors", &vectors, NULL},
		{"--source-field", &sf, NULL}, {"--chunk-field", &cf, NULL},
		{"--text-field", &tf, NULL}, {"--vector-field", &vf, NULL},
		{"--meta-field", &mf, NULL}, {"--batch", &batch, NULL},
		{"--inflight", &inflight, NULL},
		{"--checkpoint", &ckpt, NULL}, {"--reject", &reject, NULL},
		{"--max-errors", &maxerr, NULL}, {"--quiet", NULL, &quiet},
		{"-q", NULL, &quiet}, {"--help", NULL, &want_help},
		{"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[2];
	const char **metas = NULL;
	load_state st;
	anc_limits lim;
	const char *line;
	size_t len;
	uint32_t u, i, nmeta = 0;
	uint64_t nlines;
	anc_error cerr;
	double secs;
	int npos, found = 0, eof, code;

	memset(&st, 0, sizeof(st));
	st.umask = umask(0);
	(void)umask(st.umask);
	st.ctx = ctx;
	anc_limits_default(&lim);
	anc_cli_fields_default(&st.fields);
	st.t0 = now_s();
	st.last_progress = st.t0;
	if ((code = anc_cli_args_parse(ctx, argc, argv, specs, pos, 2, &npos,
	         err)))
		goto leave;
	if (want_help) {
		fputs(load_usage, stdout);
		goto leave;
	}
	if (npos < 2) {
		code = anc_cli_usage(ctx, err, "load: missing %s (see anchorage "
		    "load --help)", npos ? "FILE.jsonl" : "COLLECTION and "
		    "FILE.jsonl");
		goto leave;
	}
	{
		const char *fv[] = {sf, cf, tf, vf};
		const char *fn[] = {"--source-field", "--chunk-field",
		                    "--text-field", "--vector-field"};
		for (i = 0; i < 4; i++)
			if (fv[i] != NULL && fv[i][0] == '\0') {
				code = anc_cli_usage(ctx, err, "load: %s: "
				    "expected a field name, got an empty string",
				    fn[i]);
				goto leave;
			}
	}
	/* --meta-field is repeatable: collect every occurrence in order
	 * (the option scanner keeps only the last). */
	if (mf != NULL) {
		if ((metas = calloc((size_t)argc, sizeof(*metas))) == NULL) {
			code = anc_error_set(err, ANC_ENOMEM, "out of memory");
			goto leave;
		}
		for (i = 1; i < (uint32_t)argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--meta-field") == 0 &&
			    i + 1 < (uint32_t)argc)
				metas[nmeta++] = argv[++i];
			else if (strncmp(argv[i], "--meta-field=", 13) == 0)
				metas[nmeta++] = argv[i] + 13;
		}
		for (i = 0; i < nmeta; i++)
			if (metas[i][0] == '\0') {
				code = anc_cli_usage(ctx, err, "load: "
				    "--meta-field: expected a field name, got "
				    "an empty string");
				goto leave;
			}
		for (i = 0; i < nmeta; i++)
			for (u = 0; u < i; u++)
				if (strcmp(metas[i], metas[u]) == 0) {
					code = anc_cli_usage(ctx, err,
					    "load: --meta-field %s given twice",
					    metas[i]);
					goto leave;
				}
		st.fields.meta = metas;
		st.fields.nmeta = nmeta;
	}
	st.collection = pos[0];
	st.path = pos[1];
	st.name = strcmp(st.path, "-") == 0 ? "stdin" : st.path;
	st.vpath = vectors;
	st.quiet = quiet;
	st.ckpt = ckpt;
	st.batch_max = LOAD_DEFAULT_BATCH;
	st.inflight = LOAD_DEFAULT_INFLIGHT;
	if ((batch != NULL && (code = anc_cli_u32_parse(batch, "--batch", 1,
	                           lim.max_records, &st.batch_max, err))) ||
	    (inflight != NULL && (code = anc_cli_u32_parse(inflight,
	                              "--inflight", 1, ANC_PIPELINE_MAX_DEPTH,
	                              &st.inflight, err))) ||
	    (maxerr != NULL && (code = anc_cli_u32_parse(maxerr,
	                            "--max-errors", 0, UINT32_MAX - 1, &u,
	                            err)))) {
		ctx->usage_error = 1;
		goto leave;
	}
	st.max_errors = maxerr != NULL ? u : 0;
	/* The files load writes must not be the files it reads (or each
	 * other): --reject g.jsonl g.jsonl would truncate the input. */
	{
		const char *in[2] = {strcmp(st.path, "-") == 0 ? NULL : st.path,
		                     vectors};
		const char *outs[2] = {reject, ckpt};
		const char *oname[2] = {"--reject", "--checkpoint"};
		for (int o = 0; o < 2; o++)
			for (int i = 0; i < 3; i++) {
				const char *other = i < 2 ? in[i]
				                  : o == 0 ? ckpt : NULL;
				if (outs[o] != NULL && other != NULL &&
				    same_file(outs[o], other)) {
					code = anc_cli_usage(ctx, err,
					    "load: %s %s is the same file as %s: it "
					    "would be overwritten", oname[o],
					    outs[o], i == 2 ? "--checkpoint"
					    : i == 0 ? "the input" : "--vectors");
					goto leave;
				}
			}
	}
	if (sf) st.fields.source = sf;
	if (cf) st.fields.chunk = cf, st.fields.chunk_explicit = 1;
	if (tf) st.fields.text = tf, st.fields.text_explicit = 1;
	if (vf) st.fields.vector = vf;
	if (vectors != NULL && vf != NULL) {
		code = anc_cli_usage(ctx, err, "load: --vectors and "
		    "--vector-field exclude each other");
		goto leave;
	}
	if (vectors != NULL && strcmp(vectors, "-") == 0 &&
	    strcmp(st.path, "-") == 0) {
		code = anc_cli_usage(ctx, err, "load: the JSONL and --vectors "
		    "cannot both be stdin");
		goto leave;
	}
	st.fields.want_vector = vectors == NULL;
	st.fields.max_text = lim.max_text;
	st.fields.max_meta = lim.max_meta;
	st.tty = isatty(STDERR_FILENO);
	if ((code = anc_collection_name_check(st.collection, err)) ||
	    (code = anc_cli_lines_open(st.path, &st.in, err)) ||
	    (vectors != NULL &&
	     (code = anc_cli_vecs_open(vectors, &st.vecs, err))) ||
	    (code = anc_cli_connect(ctx, err)) ||
	    (code = load_find_contract(&st, contract, err)))
		goto leave;
	if (st.vecs != NULL) {
		if (anc_cli_vecs_dim(st.vecs) != st.dim) {
			code = anc_error_set(err, ANC_EDIM,
			    "%s: vectors have d=%u, contract %s has dim %u",
			    vectors, anc_cli_vecs_dim(st.vecs), st.contract,
			    st.dim);
			goto leave;
		}
		/* Pairing line i with row i is only right when the counts
		 * agree: check before sending anything when both are
		 * knowable without reading the input twice into memory. */
		/* A gzip-compressed vector file tells neither its row count
		 * (.fvecs) nor whether data trails its shape (.npy) before it
		 * has been read: read it through once first, so that a
		 * mismatch stops the load before anything is sent. */
		int64_t vrows = anc_cli_vecs_rows(st.vecs);
		if (is_gzip(vectors) &&
		    (code = vecs_prescan(vectors, st.dim, &vrows, err)) != ANC_OK)
			goto leave;
		if (vrows >= 0 &&
		    anc_cli_lines_count_file(st.path, &nlines, &cerr) ==
		        ANC_OK) {
			if (nlines != (uint64_t)vrows) {
				code = anc_error_set(err, ANC_EINVAL,
				    "%s has %llu lines but %s has %lld vectors: "
				    "expected one vector per line", st.path,
				    (unsigned long long)nlines, vectors,
				    (long long)vrows);
				goto leave;
			}
			st.total_lines = nlines;
		}
	}
	if (st.ckpt != NULL && (code = ckpt_read(&st, &found, err)))
		goto leave;
	if (st.ckpt != NULL) {
		/* written as CKPT.XXXXXX then renamed: its directory must take
		 * new files, known now rather than after the first batch */
		char dirbuf[4096];
		snprintf(dirbuf, sizeof dirbuf, "%s", st.ckpt);
		const char *d = dirname(dirbuf);
		if (access(d, W_OK | X_OK) != 0) {
			code = anc_error_set(err, ANC_EIO, "--checkpoint %s: cannot "
			    "write in %s: %s", st.ckpt, d, strerror(errno));
			goto leave;
		}
	}
	if (reject != NULL &&
	    ((st.reject = fopen(reject, found ? "a" : "w")) == NULL ||
	     fstat(fileno(st.reject), &st.reject_st) != 0 ||
	     fseeko(st.reject, 0, SEEK_END) != 0)) {
		code = anc_error_set(err, ANC_EIO, "--reject %s: cannot open: %s",
		    reject, strerror(errno));
		goto leave;
	}
	st.acked_reject_bytes = st.reject != NULL
	    ? (int64_t)ftello(st.reject) : -1;
	if (win_init(&st.win, (size_t)(st.inflight + 1) * st.batch_max) !=
	    ANC_OK) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "cannot allocate the duplicate window of %u x %u records",
		    st.inflight + 1, st.batch_max);
		goto leave;
	}
	if (found && (code = load_skip(&st, err)))
		goto leave;
	/* A resume appends to the --reject file of the checkpoint's load,
	 * cut back to what it held at the checkpoint: the lines after it
	 * are read, and rejected, again. Only that very file (device and
	 * inode), only a regular one, and only once the resume is known
	 * good; a file shorter than recorded is left as it is. */
	if (st.reject != NULL && found && st.ckpt_reject_bytes >= 0 &&
	    S_ISREG(st.reject_st.st_mode) &&
	    strncmp(reject, "/dev/", 5) != 0 &&  /* /dev/stdout > log */
	    strncmp(reject, "/proc/", 6) != 0 &&
	    (uint64_t)st.reject_st.st_dev == st.ckpt_reject_dev &&
	    (uint64_t)st.reject_st.st_ino == st.ckpt_reject_ino &&
	    st.acked_reject_bytes > st.ckpt_reject_bytes) {
		if (fflush(st.reject) != 0 ||
		    ftruncate(fileno(st.reject),
		              (off_t)st.ckpt_reject_bytes) != 0 ||
		    fseeko(st.reject, 0, SEEK_END) != 0) {
			code = anc_error_set(err, ANC_EIO, "--reject %s: cannot "
			    "cut back to the checkpoint's %lld bytes: %s", reject,
			    (long long)st.ckpt_reject_bytes, strerror(errno));
			goto leave;
		}
		st.acked_reject_bytes = st.ckpt_reject_bytes;
	}
	st.rejected = st.acked_rejected;
	st.resume_rejected = st.acked_rejected;
	st.lines = calloc(st.batch_max, sizeof(*st.lines));
	st.recs = calloc(st.batch_max, sizeof(*st.recs));
	st.cur.lineno = calloc(st.batch_max, sizeof(*st.cur.lineno));
	st.cur.anchors = calloc(st.batch_max, sizeof(*st.cur.anchors));
	st.ring = calloc(st.inflight, sizeof(*st.ring));
	if (st.vecs != NULL)
		st.vbuf = malloc((size_t)st.batch_max * st.dim * sizeof(float));
	code = !st.lines || !st.recs || !st.cur.lineno || !st.cur.anchors ||
	    !st.ring || (st.vecs != NULL && !st.vbuf) ? ANC_ENOMEM : ANC_OK;
	for (i = 0; code == ANC_OK && i < st.inflight; i++) {
		st.ring[i].lineno = calloc(st.batch_max, sizeof(uint64_t));
		st.ring[i].anchors = calloc(st.batch_max, ANC_ANCHOR_RAW);
		if (!st.ring[i].lineno || !st.ring[i].anchors)
			code = ANC_ENOMEM;
	}
	if (code != ANC_OK) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "cannot allocate batches of %u records", st.batch_max);
		goto leave;
	}
	if ((code = anc_pipeline_open(ctx->client, st.inflight, &st.pipe,
	         err)))
		goto leave;
	st.acked_line = st.resume_line;
	st.acked_offset = anc_cli_lines_offset(st.in);
	st.last_ckpt = now_s();

	/* The load proper. */
	for (;;) {
		code = anc_cli_lines_next(st.in, &line, &len, err);
		if (code == ANC_ETOOBIG && line != NULL)
			code = load_long_line(&st, line, len, err);
		else if (code == ANC_OK && line != NULL)
			code = load_line(&st, line, len, err);
		if (code != ANC_OK || line == NULL)
			break;
		progress_emit(&st, 0);
	}
	if (code == ANC_OK && st.vecs != NULL) {
		float *spare = st.vbuf; /* the batch rows are not needed */

		if (st.nbatch > 0 &&
		    (code = load_send(&st, err)) != ANC_OK)
			goto drained;
		if ((code = anc_cli_vecs_next(st.vecs, spare, &eof, err)) ==
		        ANC_OK && !eof)
			code = anc_error_set(err, ANC_EINVAL,
			    "%s has more vectors than %s has lines (%llu): "
			    "expected one vector per line", vectors, st.name,
			    (unsigned long long)anc_cli_lines_lineno(st.in));
	}
	if (code == ANC_OK)
		code = load_send(&st, err);
	else
		batch_clear(&st); /* never send a batch after a stop */
drained:
	code = load_drain(&st, code, err);
	if (code == ANC_OK) {
		/* Rejected lines after the last batch are done too. */
		st.acked_line = anc_cli_lines_lineno(st.in);
		st.acked_offset = anc_cli_lines_offset(st.in);
		st.acked_rejected = st.rejected;
		st.acked_reject_bytes = st.reject != NULL
		    ? (int64_t)ftello(st.reject) : -1;
	}
	/* A finished load always marks its checkpoint done, even when a
	 * periodic write already recorded the last line. */
	if (st.ckpt != NULL && code == ANC_OK)
		code = ckpt_write(&st, st.acked_line, st.acked_offset, 1, err);
	else if (st.ckpt != NULL && st.acked_line != st.last_ckpt_line)
		(void)ckpt_write(&st, st.acked_line, st.acked_offset, 0,
		    &cerr); /* the load's own error is reported */
	progress_clear(&st);
	if (code != ANC_OK) {
		char msg[ANC_ERRMSG_MAX];

		/* Say what is safely done, now that nothing is in flight. */
		snprintf(msg, sizeof(msg), "%s", err->msg);
		anc_error_set(err, code, "%s; %llu records loaded, input done "
		    "up to line %llu%s", msg, (unsigned long long)st.loaded,
		    (unsigned long long)st.acked_line, st.ckpt != NULL
		    ? " (re-run with the same --checkpoint to continue)" : "");
		goto leave;
	}
	if (!st.quiet && (st.tty || ctx->json))
		progress_emit(&st, 1);
	secs = now_s() - st.t0;
	if (ctx->json)
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:s,s:I,s:I}", "loaded",
		    (json_int_t)st.loaded, "created", (json_int_t)st.created,
		    "updated", (json_int_t)st.updated, "unchanged",
		    (json_int_t)st.unchanged, "rejected",
		    (json_int_t)st.rejected, "seconds", secs,
		    "records_per_s", secs > 0 ? (double)st.loaded / secs : 0.0,
		    "contract", st.contract, "resumed_at_line",
		    (json_int_t)st.resume_line, "rejected_before_resume",
		    (json_int_t)st.resume_rejected), err);
	else {
		char before[64] = "";

		if (st.resume_rejected > 0)
			snprintf(before, sizeof before, ", %llu of them before "
			    "the checkpoint",
			    (unsigned long long)st.resume_rejected);
		printf("loaded %llu records (%llu created, %llu updated, %llu "
		    "unchanged, %llu rejected%s) in %.2f s, %.0f records/s%s\n",
		    (unsigned long long)st.loaded,
		    (unsigned long long)st.created,
		    (unsigned long long)st.updated,
		    (unsigned long long)st.unchanged,
		    (unsigned long long)st.rejected, before, secs,
		    secs > 0 ? (double)st.loaded / secs : 0.0,
		    found ? " (resumed from the checkpoint)" : "");
	}
leave:
	batch_clear(&st);
	anc_pipeline_close(st.pipe);
	anc_cli_lines_close(st.in);
	anc_cli_vecs_close(st.vecs);
	if (st.reject != NULL && fclose(st.reject) != 0 && code == ANC_OK)
		code = anc_error_set(err, ANC_EIO, "--reject: cannot write: %s",
		    strerror(errno));
	win_free(&st.win);
	for (i = 0; st.ring != NULL && i < st.inflight; i++) {
		free(st.ring[i].lineno);
		free(st.ring[i].anchors);
	}
	free(st.ring);
	free(st.lines);
	free(st.recs);
	free(st.vbuf);
	free(st.cur.lineno);
	free(st.cur.anchors);
	free(metas);
	return code;
}
