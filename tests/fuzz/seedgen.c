/*
 * seedgen.c — writes the seed corpora of the fuzz targets
 * (tests/fuzz/corpus/<target>/) from real messages and files.
 *
 *   seedgen OUTDIR DATADIR REPO
 *
 * Design note
 * -----------
 * Seeds should be what the parsers really see, so the protocol seeds are
 * not hand-written: every request is built with the codec
 * (anc_req_encode), then handled by the real server code
 * (anc_server_handle over an engine opened in a temporary directory), and
 * the reply it produces is the response seed. One session covers every
 * operation, success and error answers. The file seeds are small: a few
 * rows of the real SIFT and MiniLM files, the demo contract, the first
 * SOTU lines, each also gzip-compressed where the reader accepts gzip.
 *
 * The output is committed; re-run this only when the protocol changes
 * (scripts/fuzz.sh --seeds).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "anc_index.h"
#include "anc_proto.h"
#include "cli_vecfile.h"
#include "srv_server.h"

static const char *outdir;
static int failures;

static void
die(const char *what, const anc_error *err)
{
	fprintf(stderr, "seedgen: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static void
mkdir_p(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "seedgen: mkdir %s: %s\n", path,
		        strerror(errno));
		exit(1);
	}
}

/* Write prefix (plen bytes, may be 0) + data to OUTDIR/target/name. */
static void
seed(const char *target, const char *name, const void *prefix, size_t plen,
     const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", outdir, target);
	mkdir_p(path);
	snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    (plen && fwrite(prefix, 1, plen, f) != plen) ||
	    (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		fprintf(stderr, "seedgen: write %s: %s\n", path,
		        strerror(errno));
		exit(1);
	}
}

/* gzip of data, malloc'd. */
static void *
gz(const void *data, size_t len, size_t *outlen)
{
	z_stream z = {0};
	size_t cap = compressBound(len) + 64;
	unsigned char *out = malloc(cap);

	if (out == NULL ||
	    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	        Z_OK)
		die("deflateInit2", NULL);
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		die("deflate", NULL);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

/* ---- protocol seeds ------------------------------------------------------ */

static anc_db *db;
static anc_limits lim;
static int nseq;

/* Encode req, save it, handle it, save the reply (prefixed by its op). */
static void
exchange(const anc_req *req, const char *tag)
{
	anc_buf in, out;
	anc_error err = {0};
	char name[128];
	uint8_t op = (uint8_t)req->op;

	anc_buf_init(&in);
	anc_buf_init(&out);
	if (anc_req_encode(req, &in, &err) != ANC_OK)
		die(tag, &err);
	snprintf(name, sizeof name, "%02d-%s", nseq++, tag);
	seed("fuzz_req", name, NULL, 0, in.data, in.len);
	if (anc_server_handle(db, NULL, &lim, in.data, in.len, &out) != ANC_OK)
		die("anc_server_handle", NULL);
	seed("fuzz_resp", name, &op, 1, out.data, out.len);
	anc_resp *resp = NULL;
	if (anc_resp_decode(out.data, out.len, req->op, &lim, &resp, &err) !=
	    ANC_OK) {
		fprintf(stderr, "seedgen: %s: reply does not decode: %s\n",
		        tag, err.msg);
		failures++;
	}
	anc_resp_free(resp);
	anc_buf_free(&in);
	anc_buf_free(&out);
}

static void
unit(float *v, uint32_t dim, uint32_t seedv)
{
	float n = 0;
	for (uint32_t i = 0; i < dim; i++) {
		v[i] = (float)((seedv * 7 + i * 3) % 11) - 5.0f + 0.5f;
		n += v[i] * v[i];
	}
	n = sqrtf(n);
	for (uint32_t i = 0; i < dim; i++)
		v[i] /= n;
}

static void
protocol_seeds(const char *tmp)
{
	anc_db_options opt;
	anc_error err = {0};
	anc_req r;
	enum { D = 4 };
	float v[6][D];
	static const uint8_t meta[] = {0x82, 0xa4, 'l', 'a', 'n', 'g', 0xa2,
	    'e', 'n', 0xa4, 'p', 'a', 'g', 'e', 0x07};

	anc_db_options_default(&opt);
	opt.nosync = 1;
	opt.quiet = 1;
	opt.drift_off = 0;
	anc_limits_default(&lim);
	if (anc_db_open(tmp, &opt, &db, &err) != ANC_OK)
		die("anc_db_open", &err);
	for (uint32_t i = 0; i < 6; i++)
		unit(v[i], D, i);

	memset(&r, 0, sizeof r);
	r.id = 1;
	r.op = ANC_OP_PING;
	exchange(&r, "ping");
	r.op = ANC_OP_INFO;
	exchange(&r, "info-empty");
	r.op = ANC_OP_COLLECTION_CREATE;
	r.u.collection_create.name = "docs";
	exchange(&r, "collection_create");

	memset(&r, 0, sizeof r);
	r.id = 2;
	r.op = ANC_OP_CONTRACT_REGISTER;
	r.u.contract_register.collection = "docs";
	anc_contract *c = &r.u.contract_register.contract;
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "tiny");
	snprintf(c->model, sizeof c->model, "fuzz/tiny-embedder");
	snprintf(c->revision, sizeof c->revision, "1");
	snprintf(c->preprocess, sizeof c->preprocess, "lowercase");
	c->dim = D;
	c->metric = ANC_METRIC_COSINE;
	c->normalize = 1;
	anc_canary can[2] = {{"probe one", v[4], D}, {"probe two", v[5], D}};
	r.u.contract_register.canaries = can;
	r.u.contract_register.ncanaries = 2;
	exchange(&r, "contract_register");

	/* A second contract, HNSW, l2, migrating. */
	anc_contract c1 = *c;
	snprintf(c->name, sizeof c->name, "tiny-l2");
	c->metric = ANC_METRIC_L2;
	c->normalize = 0;
	c->index.kind = ANC_INDEX_HNSW;
	c->index.m = 16;
	c->index.ef_construction = 40;
	c->index.ef_search = 32;
	r.u.contract_register.canaries = NULL;
	r.u.contract_register.ncanaries = 0;
	exchange(&r, "contract_register-hnsw");

	memset(&r, 0, sizeof r);
	r.id = 3;
	r.op = ANC_OP_UPSERT;
	r.auth = "anc_0123456789abcdef";
	anc_record rec[3] = {
		{"doc-a", "0", "The first passage.", meta, sizeof meta, v[0], D},
		{"doc-a", "1", "The second passage.", NULL, 0, v[1], D},
		{"doc-b", "", NULL, NULL, 0, v[2], D},
	};
	r.u.upsert = (anc_req_upsert){"docs", "tiny@1", rec, 3};
	exchange(&r, "upsert");
	r.u.upsert.contract = "tiny-l2@1";
	exchange(&r, "upsert-l2");
	r.auth = NULL;

	memset(&r, 0, sizeof r);
	r.id = 4;
	r.op = ANC_OP_QUERY;
	r.u.query = (anc_req_query){"docs", "", &v[0][0], 2, D, 2, 1};
	exchange(&r, "query");
	r.u.query.contract = "tiny-l2@1";
	r.u.query.with_text = 0;
	exchange(&r, "query-hnsw");
	r.u.query.collection = "nope";
	exchange(&r, "query-unknown-collection");
	r.u.query.collection = "docs";
	r.u.query.contract = "";
	r.u.query.dim = 2;
	exchange(&r, "query-wrong-dim");

	anc_anchor_str an[3];
	uint8_t raw[ANC_ANCHOR_RAW];
	(void)anc_anchor_compute("docs", "doc-a", "0", raw);
	anc_anchor_format(raw, an[0]);
	(void)anc_anchor_compute("docs", "doc-b", "", raw);
	anc_anchor_format(raw, an[1]);
	(void)anc_anchor_compute("docs", "never", "x", raw);
	anc_anchor_format(raw, an[2]);
	memset(&r, 0, sizeof r);
	r.id = 5;
	r.op = ANC_OP_DELETE;
	r.u.del = (anc_req_anchors){"docs", &an[1], 2};
	exchange(&r, "delete");
	r.op = ANC_OP_RESOLVE;
	r.u.resolve = (anc_req_anchors){"docs", an, 3};
	exchange(&r, "resolve");

	memset(&r, 0, sizeof r);
	r.id = 6;
	r.op = ANC_OP_CONTRACT_CHECK;
	r.u.contract_check = (anc_req_check){"docs", "tiny@1", &v[4][0], 2, D};
	exchange(&r, "contract_check");
	r.op = ANC_OP_CONTRACT_PROMOTE;
	r.u.contract_state.collection = "docs";
	r.u.contract_state.contract = "tiny-l2@1";
	r.u.contract_state.force = 1;
	exchange(&r, "contract_promote");
	r.op = ANC_OP_CONTRACT_RETIRE;
	r.u.contract_state.contract = "tiny@1";
	r.u.contract_state.force = 0;
	exchange(&r, "contract_retire");
	r.op = ANC_OP_INFO;
	exchange(&r, "info");
	r.op = ANC_OP_DRIFT;
	r.u.drift = (anc_req_drift){"docs", "", 1};
	exchange(&r, "drift");
	(void)c1;
	if (anc_db_close(db, &err) != ANC_OK)
		die("anc_db_close", &err);
}

/* ---- file seeds ---------------------------------------------------------- */

static void
fvecs_seeds(const char *data)
{
	char path[4096];
	float *v = NULL;
	uint32_t n, dim;
	anc_error err = {0};
	static const uint8_t range[][2] = {{0, 7}, {1, 2}, {0, 0}};

	snprintf(path, sizeof path, "%s/sift5k/sift5k_base.fvecs", data);
	if (anc_fvecs_read(path, 0, 2, &v, &n, &dim, &err) != ANC_OK)
		die("sift", &err);
	size_t rec = 4 + 4 * (size_t)dim, len = 2 * rec, zl;
	unsigned char *buf = malloc(len);
	for (uint32_t r = 0; r < 2; r++) {
		int32_t d = (int32_t)dim;
		memcpy(buf + r * rec, &d, 4);
		memcpy(buf + r * rec + 4, v + (size_t)r * dim, 4 * (size_t)dim);
	}
	seed("fuzz_vecfile", "sift-2rows", range[0], 2, buf, len);
	seed("fuzz_vecfile", "sift-1row-range", range[1], 2, buf, rec);
	unsigned char *z = gz(buf, len, &zl);
	seed("fuzz_vecfile", "sift-2rows.gz", range[0], 2, z, zl);
	free(z);
	/* Tiny: 3 rows of d=2, and a truncated copy. */
	unsigned char tiny[3 * 12];
	for (int r = 0; r < 3; r++) {
		int32_t d = 2;
		float f[2] = {(float)r, -0.5f * (float)r};
		memcpy(tiny + r * 12, &d, 4);
		memcpy(tiny + r * 12 + 4, f, 8);
	}
	seed("fuzz_vecfile", "tiny-3x2", range[1], 2, tiny, sizeof tiny);
	seed("fuzz_vecfile", "tiny-truncated", range[2], 2, tiny,
	     sizeof tiny - 3);
	free(buf);
	free(v);
}

/* A .npy v1.0 (or v2.0) file of rows x dim float32 from vals. */
static unsigned char *
npy(int version, uint32_t rows, uint32_t dim, const float *vals,
    size_t *outlen)
{
	char dict[128];
	int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', "
	                  "'fortran_order': False, 'shape': (%u, %u), }", rows,
	                  dim);
	size_t pre = version == 1 ? 10 : 12;
	size_t hl = (size_t)dl + 1;
	while ((pre + hl) % 64 != 0)
		hl++;
	size_t len = pre + hl + (size_t)rows * dim * 4;
	unsigned char *b = malloc(len);
	memcpy(b, "\x93NUMPY", 6);
	b[6] = (unsigned char)version;
	b[7] = 0;
	if (version == 1) {
		b[8] = (unsigned char)(hl & 0xff);
		b[9] = (unsigned char)(hl >> 8);
	} else {
		uint32_t h = (uint32_t)hl;
		memcpy(b + 8, &h, 4);
	}
	memset(b + pre, ' ', hl);
	memcpy(b + pre, dict, (size_t)dl);
	b[pre + hl - 1] = '\n';
	memcpy(b + pre + hl, vals, (size_t)rows * dim * 4);
	*outlen = len;
	return b;
}

static void
npy_seeds(const char *data)
{
	char path[4096];
	float *v = NULL;
	uint32_t n, dim;
	anc_error err = {0};
	size_t len, zl;

	snprintf(path, sizeof path,
	         "%s/sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs", data);
	if (anc_fvecs_read(path, 0, 1, &v, &n, &dim, &err) != ANC_OK)
		die("minilm", &err);
	unsigned char *b = npy(1, 1, dim, v, &len);
	seed("fuzz_npy", "minilm-1x384.npy", NULL, 0, b, len);
	unsigned char *z = gz(b, len, &zl);
	seed("fuzz_npy", "minilm-1x384.npy.gz", NULL, 0, z, zl);
	free(z);
	free(b);
	float small[6] = {1, 2, 3, 4, 5, 6};
	b = npy(1, 3, 2, small, &len);
	seed("fuzz_npy", "small-3x2.npy", NULL, 0, b, len);
	free(b);
	b = npy(2, 2, 3, small, &len);
	seed("fuzz_npy", "small-2x3-v2.npy", NULL, 0, b, len);
	free(b);
	const char *hdr = "{'descr': '<f4', 'fortran_order': False, "
	                  "'shape': (10, 384), }          \n";
	seed("fuzz_npy", "header-only", NULL, 0, hdr, strlen(hdr));
	free(v);
}

static void
json_seeds(const char *data, const char *repo)
{
	char path[4096];
	FILE *f;
	char line[65536];
	size_t zl;

	/* Contracts: the demo's, an HNSW one, one with every field. */
	snprintf(path, sizeof path, "%s/examples/sotu-minilm.contract.json",
	         repo);
	if ((f = fopen(path, "rb")) != NULL) {
		size_t l = fread(line, 1, sizeof line, f);
		fclose(f);
		seed("fuzz_contract", "sotu-minilm.json", NULL, 0, line, l);
	}
	const char *c1 = "{\"name\": \"sift\", \"model\": \"inria-texmex-sift\","
	    " \"revision\": \"1\", \"dim\": 128, \"metric\": \"l2\", "
	    "\"normalize\": false, \"index\": {\"kind\": \"flat\"}}\n";
	const char *c2 = "{\"name\": \"minilm\", \"model\": "
	    "\"sentence-transformers/all-MiniLM-L6-v2\", \"revision\": \"2\", "
	    "\"dim\": 384, \"metric\": \"cosine\", \"normalize\": true, "
	    "\"dtype\": \"f32\", \"preprocess\": \"nfc, lowercase\", "
	    "\"index\": {\"kind\": \"hnsw\", \"m\": 16, \"ef_construction\": "
	    "100, \"ef_search\": 48}}";
	const char *c3 = "{\"name\": \"ip\", \"model\": \"m\", \"revision\": "
	    "\"r\", \"dim\": 4096, \"metric\": \"ip\", \"normalize\": false}";
	seed("fuzz_contract", "sift-flat.json", NULL, 0, c1, strlen(c1));
	seed("fuzz_contract", "minilm-hnsw.json", NULL, 0, c2, strlen(c2));
	seed("fuzz_contract", "ip-minimal.json", NULL, 0, c3, strlen(c3));

	/* JSONL: inline vectors with metadata; SOTU text lines. */
	const char *l1 =
	    "{\"source\": \"doc-a\", \"chunk\": \"0\", \"text\": \"hello\", "
	    "\"vector\": [0.5, -0.5, 0.5, -0.5], \"lang\": \"en\", "
	    "\"tags\": [\"x\", 1, 2.5, {\"k\": null, \"t\": true}]}\n"
	    "{\"source\": 17, \"chunk\": 3, \"vector\": [1, 0, 0, 0e0]}\r\n"
	    "{\"source\": \"b\", \"text\": \"\\u00e9t\\u00e9\", "
	    "\"vector\": [1e-3, 2E+2, -0.0, 3]}";
	uint8_t opt = 1 | 8 | (3 << 4); /* vector, meta, dim 4 */
	seed("fuzz_jsonl", "inline-vectors", &opt, 1, l1, strlen(l1));
	size_t l1len = strlen(l1);
	unsigned char *z = gz(l1, l1len, &zl);
	seed("fuzz_jsonl", "inline-vectors.gz", &opt, 1, z, zl);
	free(z);
	snprintf(path, sizeof path, "%s/sotu-2models/sotu_chunks.jsonl", data);
	if ((f = fopen(path, "rb")) != NULL) {
		size_t l = 0;
		for (int i = 0; i < 2 && fgets(line + l, (int)(sizeof line - l),
		         f) != NULL; i++)
			l += strlen(line + l);
		fclose(f);
		opt = 2 | 4; /* --vectors elsewhere, chunk and text required */
		seed("fuzz_jsonl", "sotu-2lines", &opt, 1, line, l);
	}
}

int
main(int argc, char **argv)
{
	char tmp[] = "/tmp/anc-seedgen-XXXXXX";

	if (argc != 4) {
		fprintf(stderr, "usage: seedgen OUTDIR DATADIR REPO\n");
		return 2;
	}
	outdir = argv[1];
	mkdir_p(outdir);
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	protocol_seeds(tmp);
	fvecs_seeds(argv[2]);
	npy_seeds(argv[2]);
	json_seeds(argv[2], argv[3]);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "seedgen: could not remove %s\n", tmp);
	return failures ? 1 : 0;
}
