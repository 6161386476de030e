/*
 * e2e_drift_test.c — drift detection against a real server on real data
 * (../shared/data), as in issue 4's "Evaluation on real data":
 *   - SOTU MiniLM index queried with the transport act (same model, other
 *     domain): drift;
 *   - the other model's SOTU vectors projected to 384-d and normalised (so
 *     they pass the contract): drift, and the per-query flag on most;
 *   - Fashion-MNIST train indexed, t10k queried in random order: no false
 *     alarm over 20 disjoint windows (window 256 here to bound make test's
 *     time; ANC_DRIFT_EVAL_WINDOW=500 runs the full 500-query windows), then
 *     3 classes only: drift, with the detection delay printed;
 *   - the drift op's failure paths, and the history surviving a restart.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_drift, .fini = tu_cleanup, .timeout = 900);

static void
start(tu_server *srv, const char *dir, const char *window)
{
	const char *extra[] = {"--nosync", "--http", "off", "--drift-window",
	                       window, "--quiet", NULL};
	tu_server_startv(srv, tu_path(dir, "data"),
	                 tu_ipc_url(dir, "s.ipc"), extra);
}

static float *
fvecs(const char *rel, uint32_t *n, uint32_t *dim)
{
	return tu_fvecs(rel, 0, UINT32_MAX, n, dim);
}

static anc_drift_report
drift(anc_client *c, const char *coll, int fresh)
{
	anc_resp *r = NULL;
	anc_error err;
	cr_assert_eq(anc_client_drift(c, coll, NULL, fresh, &r, &err), ANC_OK,
	             "%s", err.msg);
	anc_drift_report rep = r->u.drift;
	anc_resp_free(r);
	return rep;
}

/* Query vecs (n x dim) in batches; returns how many came back flagged. */
static uint32_t
query_all(anc_client *c, const char *coll, const float *vecs, uint32_t n,
          uint32_t dim)
{
	uint32_t flagged = 0;
	for (uint32_t i = 0; i < n; i += 256) {
		uint32_t m = n - i < 256 ? n - i : 256;
		anc_resp *r = NULL;
		anc_error err;
		cr_assert_eq(anc_client_query(c, coll, NULL, vecs + (size_t)i * dim,
		                              m, dim, 1, 0, &r, &err),
		             ANC_OK, "%s", err.msg);
		for (uint32_t q = 0; q < r->u.query.nq; q++)
			flagged += r->u.query.lists[q].drift_flag != 0;
		anc_resp_free(r);
	}
	return flagged;
}

Test(e2e_drift, sotu_vs_transport_act_is_domain_drift)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_contract_id_str id;
	uint32_t n, dim;
	start(&srv, dir, "1024");
	tu_sotu_load_cli(dir, "sotu", id, NULL);
	anc_client *c = tu_client(&srv);

	anc_drift_report r = drift(c, "sotu", 1);
	cr_expect_eq(r.status, ANC_DRIFT_INSUFFICIENT, "no queries yet: %s",
	             anc_drift_status_name(r.status));
	cr_expect_eq(r.reference_count, 90);
	cr_expect_str_eq(r.contract, id);

	/* In-domain first: the SOTU passages themselves are not drift. */
	float *sotu = fvecs("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs", &n,
	                    &dim);
	query_all(c, "sotu", sotu, n, dim);
	r = drift(c, "sotu", 1);
	cr_expect_neq(r.status, ANC_DRIFT_DRIFT, "SOTU against itself: %s",
	              anc_drift_status_name(r.status));

	float *za = fvecs("minilm-za-transport/"
	                  "za_land_transport_act_all-MiniLM-L6-v2_384.fvecs",
	                  &n, &dim);
	cr_assert_eq(n, 394);
	query_all(c, "sotu", za, n, dim);
	query_all(c, "sotu", za, n, dim); /* repeats: counted once */
	r = drift(c, "sotu", 1);
	cr_expect_eq(r.window, 90 + 394, "distinct queries in the window: %u",
	             r.window);
	cr_log_info("transport act vs SOTU: %s, %u fired, centroid %.3f "
	            "(threshold %.4f), mmd p %.3f, auc %.3f",
	            anc_drift_status_name(r.status), r.nfired,
	            r.stats[ANC_DRIFT_STAT_CENTROID].value,
	            r.stats[ANC_DRIFT_STAT_CENTROID].threshold,
	            r.stats[ANC_DRIFT_STAT_MMD].value,
	            r.stats[ANC_DRIFT_STAT_CLASSIFIER].value);
	cr_expect_eq(r.status, ANC_DRIFT_DRIFT);
	cr_expect(r.stats[ANC_DRIFT_STAT_CENTROID].fired);
	cr_expect(r.stats[ANC_DRIFT_STAT_MMD].fired);
	cr_expect(r.stats[ANC_DRIFT_STAT_CLASSIFIER].fired);
	/* the centroid cosine between the two sets is ~0.07 (data README);
	 * the window's centroid is 394 parts transport to 90 SOTU */
	cr_expect_gt(r.stats[ANC_DRIFT_STAT_CENTROID].value, 0.6);

	/* the latest report is served without recomputing */
	anc_drift_report again = drift(c, "sotu", 0);
	cr_expect_eq(again.time, r.time);

	/* History and the latest verdict survive a restart: the new
	 * process's window is empty, and its reports (every second here)
	 * must not replace "drift" with insufficient_data (that cleared a
	 * dashboard's alert that nothing had resolved). */
	anc_client_close(c);
	tu_server_stop(&srv);
	{
		const char *extra[] = {"--nosync", "--http", "off",
		                       "--drift-window", "1024",
		                       "--drift-interval", "1", "--quiet", NULL};
		tu_server_startv(&srv, tu_path(dir, "data"),
		                 tu_ipc_url(dir, "s.ipc"), extra);
	}
	c = tu_client(&srv);
	again = drift(c, "sotu", 0);
	cr_expect_eq(again.status, ANC_DRIFT_DRIFT, "after a restart: %s",
	             anc_drift_status_name(again.status));
	cr_expect_eq(again.time, r.time);
	usleep(2500 * 1000); /* two reports due, no query yet */
	query_all(c, "sotu", za, 10, dim); /* too few for a verdict */
	usleep(1500 * 1000);
	again = drift(c, "sotu", 0);
	cr_expect_eq(again.status, ANC_DRIFT_DRIFT, "10 queries after a "
	             "restart: %s", anc_drift_status_name(again.status));
	cr_expect_eq(again.time, r.time);
	/* asked for explicitly, a fresh report says what it knows */
	again = drift(c, "sotu", 1);
	cr_expect_eq(again.status, ANC_DRIFT_INSUFFICIENT, "%s",
	             anc_drift_status_name(again.status));
	/* ... without clearing the kept verdict (the alert) either */
	again = drift(c, "sotu", 0);
	cr_expect_eq(again.status, ANC_DRIFT_DRIFT, "after --fresh: %s",
	             anc_drift_status_name(again.status));
	cr_expect_eq(again.time, r.time);
	char *out = NULL;
	tu_cli_set_url(srv.url);
	/* --json after the command, as the README shows it */
	cr_assert_eq(tu_cli(&out, NULL, "drift", "sotu", "--json", NULL), 0);
	cr_expect(strstr(out, "\"status\"") != NULL, "%s", out);
	free(out);
	anc_client_close(c);
	tu_server_stop(&srv);
	free(sotu);
	free(za);
}

Test(e2e_drift, wrong_model_projected_to_384_is_drift_and_flagged)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_contract_id_str id;
	uint32_t n, dim;
	start(&srv, dir, "1024");
	tu_sotu_load_cli(dir, "sotu", id, NULL);
	anc_client *c = tu_client(&srv);
	/* a report refreshes the reference: thresholds for the flags */
	(void)drift(c, "sotu", 1);

	float *big = fvecs("sotu-2models/sotu_llamacpp_4096.fvecs", &n, &dim);
	cr_assert_eq(dim, 4096);
	/* Fixed Gaussian projection 4096 -> 384, then unit norm: the vectors
	 * pass every contract check, they just mean nothing here. */
	float *proj = malloc((size_t)4096 * 384 * sizeof(float));
	float *x = calloc((size_t)n * 384, sizeof(float));
	uint64_t s = 1234;
	for (size_t i = 0; i < (size_t)4096 * 384; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		double u1 = ((s >> 11) + 0.5) / 9007199254740992.0;
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		double u2 = ((s >> 11) + 0.5) / 9007199254740992.0;
		proj[i] = (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
	}
	for (uint32_t r = 0; r < n; r++) {
		double norm = 0;
		for (uint32_t j = 0; j < 384; j++) {
			double acc = 0;
			for (uint32_t k = 0; k < 4096; k++)
				acc += (double)big[(size_t)r * 4096 + k] *
				       proj[(size_t)k * 384 + j];
			x[(size_t)r * 384 + j] = (float)acc;
			norm += acc * acc;
		}
		for (uint32_t j = 0; j < 384; j++)
			x[(size_t)r * 384 + j] /= (float)sqrt(norm);
	}
	uint32_t flagged = query_all(c, "sotu", x, n, 384);
	cr_log_info("wrong model: %u of %u queries flagged", flagged, n);
	cr_expect_geq(flagged, n * 8 / 10, "%u of %u flagged", flagged, n);
	anc_drift_report r = drift(c, "sotu", 1);
	cr_log_info("wrong model: %s, %u fired, window flagged %u",
	            anc_drift_status_name(r.status), r.nfired, r.window_flagged);
	cr_expect_eq(r.status, ANC_DRIFT_DRIFT);
	cr_expect_eq(r.window_flagged, flagged);

	/* and the right model's own vectors are not flagged */
	float *sotu = fvecs("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs", &n,
	                    &dim);
	flagged = query_all(c, "sotu", sotu, n, dim);
	cr_expect_leq(flagged, n / 10, "%u of %u SOTU passages flagged",
	              flagged, n);
	anc_client_close(c);
	tu_server_stop(&srv);
	free(big);
	free(proj);
	free(x);
	free(sotu);
}

Test(e2e_drift, drift_op_failure_paths)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_contract_id_str id;
	anc_resp *r = NULL;
	anc_error err;
	start(&srv, dir, "1024");
	tu_sotu_load_cli(dir, "sotu", id, NULL);
	anc_client *c = tu_client(&srv);
	cr_expect_eq(anc_client_drift(c, "nope", NULL, 0, &r, &err), ANC_ENOCOLL);
	cr_expect(strstr(err.msg, "nope") != NULL, "%s", err.msg);
	cr_expect_eq(anc_client_drift(c, "sotu", "0123456789abcdef", 0, &r, &err),
	             ANC_ENOCONTRACT);
	cr_expect_eq(anc_client_drift(c, "sotu", "zz", 0, &r, &err), ANC_EINVAL);
	cr_expect_eq(anc_client_drift(c, "bad name!", NULL, 0, &r, &err),
	             ANC_EINVAL);
	cr_expect_null(r);
	/* the CLI: a usage error and a server error */
	char *out = NULL, *e = NULL;
	tu_cli_set_url(srv.url);
	cr_expect_eq(tu_cli(&out, &e, "drift", NULL), 2);
	cr_expect(strstr(e, "COLLECTION") != NULL, "%s", e);
	free(out);
	free(e);
	cr_expect_eq(tu_cli(&out, &e, "drift", "nope", NULL), 1);
	cr_expect(strstr(e, "UNKNOWN_COLLECTION") != NULL, "%s", e);
	free(out);
	free(e);
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--fresh", NULL), 0);
	cr_expect(strstr(out, "insufficient_data") != NULL, "%s", out);
	free(out);
	free(e);
	anc_client_close(c);
	tu_server_stop(&srv);
}

/* A fresh report, waiting up to 15 s for the drift thread's reference
 * rebuild to bring reference_count to want. */
static anc_drift_report
drift_wait_ref(anc_client *c, const char *coll, uint64_t want)
{
	anc_drift_report rep;
	double t0 = tu_now();
	do {
		rep = drift(c, coll, 1);
		if (rep.reference_count == want)
			break;
		usleep(200 * 1000);
	} while (tu_now() - t0 < 15);
	return rep;
}

Test(e2e_drift, set_config_persists_and_deletes_leave_the_reference)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_contract_id_str id;
	anc_resp *r = NULL;
	anc_error err;
	tu_sotu s;
	char *out = NULL, *e = NULL;
	start(&srv, dir, "1024");
	tu_sotu_load_cli(dir, "sotu", id, NULL);
	tu_sotu_read(&s, "sotu");
	anc_client *c = tu_client(&srv);
	query_all(c, "sotu", s.vecs, s.n, s.dim); /* 90 >= min_window 64 */
	anc_drift_report rep = drift(c, "sotu", 1);
	cr_expect_eq(rep.reference_count, 90);
	cr_expect(rep.stats[ANC_DRIFT_STAT_MMD].computed);

	/* --set: syntax checked by the CLI, ranges by the server, both
	 * naming the key; nothing changes on a refusal */
	tu_cli_set_url(srv.url);
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--set", "nope=1", NULL),
	             2);
	cr_expect(strstr(e, "nope") != NULL, "%s", e);
	free(out);
	free(e);
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--set", "window=x", NULL),
	             2);
	cr_expect(strstr(e, "window") != NULL, "%s", e);
	free(out);
	free(e);
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--set",
	                    "window=64,window=128", NULL), 2);
	cr_expect(strstr(e, "anchorage: error: INVALID_ARGUMENT: --set: window "
	                 "given twice") != NULL, "%s", e);
	free(out);
	free(e);
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--set", "folds=1", NULL),
	             1);
	cr_expect(strstr(e, "folds") != NULL && strstr(e, "2..20") != NULL, "%s",
	          e);
	free(out);
	free(e);
	/* the wire refuses a malformed set before the engine sees it */
	anc_req req;
	memset(&req, 0, sizeof req);
	req.op = ANC_OP_DRIFT;
	req.u.drift.collection = "sotu";
	req.u.drift.contract = "";
	req.u.drift.set = "permutations=-3";
	cr_expect_eq(anc_client_call(c, &req, &r, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "permutations") != NULL, "%s", err.msg);
	cr_expect_null(r);
	rep = drift(c, "sotu", 1);
	cr_expect(rep.stats[ANC_DRIFT_STAT_MMD].computed, "a refused set changed "
	          "the configuration");

	/* a good set: no permutation test from now on, and it applies to
	 * the report that comes back with it, without --fresh */
	cr_expect_eq(tu_cli(&out, &e, "--json", "drift", "sotu", "--set",
	                    "permutations=0,p_value=0.01", NULL),
	             0, "%s", e);
	{
		json_error_t je;
		json_t *o = json_loads(out, 0, &je);
		cr_assert_not_null(o, "%s", out);
		json_t *mmd = json_object_get(json_object_get(o, "stats"), "mmd");
		cr_expect(json_is_false(json_object_get(mmd, "computed")),
		          "the report after --set predates it: %s", out);
		cr_expect(json_integer_value(json_object_get(o, "window_size")) >
		          0, "no window_size: %s", out);
		json_decref(o);
	}
	free(out);
	free(e);
	rep = drift(c, "sotu", 1);
	cr_expect(!rep.stats[ANC_DRIFT_STAT_MMD].computed);
	cr_expect(rep.stats[ANC_DRIFT_STAT_CLASSIFIER].computed);

	/* 20 deletes (70 left, above min_reference 64): the drift thread
	 * rebuilds the reference from LMDB */
	anc_resp *dr = NULL;
	cr_assert_eq(anc_client_delete(c, "sotu", s.anchors, 20, &dr, &err),
	             ANC_OK, "%s", err.msg);
	anc_resp_free(dr);
	rep = drift_wait_ref(c, "sotu", 70);
	cr_expect_eq(rep.reference_count, 70, "reference still holds %llu",
	             (unsigned long long)rep.reference_count);
	cr_expect_eq(rep.reference_sample, 70);
	/* a replaced vector leaves it too: passage 40 gets passage 41's
	 * vector, count stays 70 after the rebuild */
	anc_record rec;
	memset(&rec, 0, sizeof rec);
	rec.source = s.source[40];
	rec.chunk = s.chunk[40];
	rec.text = s.text[40];
	rec.vec = s.vecs + (size_t)41 * s.dim;
	rec.dim = s.dim;
	cr_assert_eq(anc_client_upsert(c, "sotu", id, &rec, 1, &dr, &err),
	             ANC_OK, "%s", err.msg);
	anc_resp_free(dr);
	rep = drift_wait_ref(c, "sotu", 70);
	cr_expect_eq(rep.reference_count, 70);
	/* the configured window shows, not only how full it is */
	cr_expect_eq(tu_cli(&out, &e, "drift", "sotu", "--set", "window=300",
	                    NULL), 0, "%s", e);
	cr_expect(strstr(out, " of 300 queries") != NULL, "%s", out);
	free(out);
	free(e);
	anc_client_close(c);
	tu_server_stop(&srv);

	/* restart: the configuration came back from LMDB */
	start(&srv, dir, "1024");
	c = tu_client(&srv);
	query_all(c, "sotu", s.vecs, s.n, s.dim);
	rep = drift(c, "sotu", 1);
	cr_expect_eq(rep.reference_count, 70);
	cr_expect(!rep.stats[ANC_DRIFT_STAT_MMD].computed,
	          "permutations=0 was not kept across the restart");
	cr_expect(rep.stats[ANC_DRIFT_STAT_CENTROID].computed);
	anc_client_close(c);
	tu_server_stop(&srv);
	tu_sotu_free(&s);
}

/* ---- Fashion-MNIST ---------------------------------------------------------- */

/* IDX (gzip): images as floats 0..255, or labels. */
static void *
idx_read(const char *rel, uint32_t *n, uint32_t *dim, int labels)
{
	gzFile g = gzopen(tu_data_path(rel), "rb");
	uint8_t hdr[16];
	cr_assert_not_null(g, "%s", rel);
	int hl = labels ? 8 : 16;
	cr_assert_eq(gzread(g, hdr, (unsigned)hl), hl);
	*n = (uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7];
	*dim = labels ? 1 : (uint32_t)hdr[11] * hdr[15];
	size_t total = (size_t)*n * *dim;
	uint8_t *raw = malloc(total);
	cr_assert_eq((size_t)gzread(g, raw, (unsigned)total), total);
	gzclose(g);
	if (labels)
		return raw;
	float *f = malloc(total * sizeof(float));
	for (size_t i = 0; i < total; i++)
		f[i] = raw[i];
	free(raw);
	return f;
}

Test(e2e_drift, fashion_mnist_no_false_alarm_then_label_shift)
{
	const char *dir = tu_tmpdir();
	tu_server srv;
	anc_error err;
	uint32_t n, dim, nq, qd, nl, one;
	/* ANC_DRIFT_EVAL_WINDOW=500 runs the full evaluation (20 disjoint
	 * windows of 500 = all of t10k); make test uses 256. */
	const char *ew = getenv("ANC_DRIFT_EVAL_WINDOW");
	const uint32_t W = ew != NULL && atoi(ew) >= 64 && atoi(ew) <= 500
	                       ? (uint32_t)atoi(ew) : 256,
	               WINDOWS = 20;
	char wstr[16];
	snprintf(wstr, sizeof wstr, "%u", W);
	start(&srv, dir, wstr);
	anc_client *c = tu_client(&srv);
	anc_resp *r = NULL;
	anc_contract ct;
	tu_contract_l2(&ct, "fmnist", "raw-pixels", 784);
	tu_client_setup(c, "fm", &ct, NULL);

	float *train = idx_read("fashion-mnist/train-images-idx3-ubyte.gz", &n,
	                        &dim, 0);
	float *test = idx_read("fashion-mnist/t10k-images-idx3-ubyte.gz", &nq,
	                       &qd, 0);
	uint8_t *lab = idx_read("fashion-mnist/t10k-labels-idx1-ubyte.gz", &nl,
	                        &one, 1);
	cr_assert_eq(n, 60000);
	cr_assert_eq(dim, 784);
	cr_assert_eq(nq, 10000);
	double t0 = tu_now();
	anc_record *recs = calloc(2000, sizeof *recs);
	char (*chunks)[16] = calloc(2000, 16);
	for (uint32_t i = 0; i < n; i += 2000) {
		for (uint32_t j = 0; j < 2000; j++) {
			snprintf(chunks[j], 16, "%u", i + j);
			recs[j].source = "fashion-mnist-train";
			recs[j].chunk = chunks[j];
			recs[j].vec = train + (size_t)(i + j) * dim;
			recs[j].dim = dim;
		}
		cr_assert_eq(anc_client_upsert(c, "fm", "fmnist@1", recs, 2000, &r,
		                               &err), ANC_OK, "%s", err.msg);
		anc_resp_free(r);
	}
	cr_log_info("fashion-mnist: 60000 x 784 loaded in %.1f s", tu_now() - t0);

	/* t10k in a fixed random order */
	uint32_t *order = malloc(nq * sizeof *order);
	uint64_t s = 99;
	for (uint32_t i = 0; i < nq; i++)
		order[i] = i;
	for (uint32_t i = nq; i > 1; i--) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t j = (uint32_t)((s >> 33) % i);
		uint32_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	float *batch = malloc((size_t)W * dim * sizeof(float));
	uint32_t warns = 0, drifts = 0, pos = 0;
	for (uint32_t w = 0; w < WINDOWS; w++) {
		for (uint32_t i = 0; i < W; i++)
			memcpy(batch + (size_t)i * dim,
			       test + (size_t)order[pos++] * dim, dim * sizeof(float));
		query_all(c, "fm", batch, W, dim);
		anc_drift_report rep = drift(c, "fm", 1);
		cr_log_info("window %2u: %-17s fired %u  centroid %.2f/%.2f comp "
		            "%.3f mmd p %.2f auc %.3f score %.3f (%.2f s)",
		            w, anc_drift_status_name(rep.status), rep.nfired,
		            rep.stats[0].value, rep.stats[0].threshold,
		            rep.stats[1].value, rep.stats[2].value, rep.stats[3].value,
		            rep.stats[4].value, rep.compute_seconds);
		cr_expect_neq(rep.status, ANC_DRIFT_INSUFFICIENT);
		warns += rep.status == ANC_DRIFT_WARN;
		drifts += rep.status == ANC_DRIFT_DRIFT;
	}
	cr_log_info("no-drift evaluation: %u warn, %u drift in %u windows of %u",
	            warns, drifts, WINDOWS, W);
	cr_expect_eq(drifts, 0, "false drift alarms: %u of %u", drifts, WINDOWS);
	cr_expect_leq(warns, 1, "false warnings: %u of %u", warns, WINDOWS);

	/* Label shift: only classes 0, 1, 2 from now on; report every 16
	 * queries until the verdict is drift. */
	uint32_t shifted = 0, delay = 0, k = 0;
	for (uint32_t i = 0; i < nq && delay == 0 && shifted < 4 * W; i++) {
		uint32_t q = order[(pos + i) % nq];
		if (lab[q] > 2)
			continue;
		memcpy(batch + (size_t)k * dim, test + (size_t)q * dim,
		       dim * sizeof(float));
		if (++k < 16)
			continue;
		query_all(c, "fm", batch, k, dim);
		shifted += k;
		k = 0;
		anc_drift_report rep = drift(c, "fm", 1);
		if (rep.status == ANC_DRIFT_DRIFT)
			delay = shifted;
	}
	cr_log_info("label shift (classes 0-2): drift after %u queries "
	            "(window %u)", delay, W);
	cr_expect_gt(delay, 0, "label shift never detected in %u queries",
	             shifted);
	cr_expect_leq(delay, W, "detected only after %u queries", delay);
	anc_client_close(c);
	tu_server_stop(&srv);
	free(train);
	free(test);
	free(lab);
	free(recs);
	free(chunks);
	free(order);
	free(batch);
}
