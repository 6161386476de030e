/*
 * e2e_ground_test.c — grounding checks and retrieval receipts (issue 8)
 * end to end: a real anchorage-server, the `anchorage` CLI, the SOTU
 * corpus with its MiniLM vectors, and transport-act chunks (same model,
 * another domain) as unrelated claims.
 *
 * The operator's path (README "Grounding checks and receipts"): load,
 * `contract show` prints the calibration, `query --receipt` prints a
 * confidence and a receipt ID, `verify` gives the verdicts, `receipt show`
 * re-checks the HMAC, a stopped server's receipt is altered by one byte
 * with liblmdb and the restarted server reports it as TAMPERED, and after
 * a cited passage is edited `receipt replay` reports the bumped revision.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"
#include "tu_db.h"

TestSuite(e2e_ground, .fini = tu_cleanup, .timeout = 240);

static tu_server srv;

#define MINILM_FV "sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"
#define TRANSPORT_FV \
	"minilm-za-transport/za_land_transport_act_all-MiniLM-L6-v2_384.fvecs"
#define COLL "sotu"

static int
cli(char **out, char **err, const char *const *args)
{
	return tu_cliv(srv.url, NULL, out, err, args);
}

static json_t *
cli_json(const char *const *args)
{
	return tu_cli_json(srv.url, JSON_DISABLE_EOF_CHECK, args);
}

/* All JSON lines of a CLI run. */
static json_t *
cli_json_lines(const char *const *args)
{
	char *out = NULL, *err = NULL, *p, *nl;
	json_t *arr = json_array();
	int st = cli(&out, &err, args);
	cr_assert_eq(st, 0, "%s: exit %d: %s", args[1], st, err);
	for (p = out; p != NULL && *p; p = nl ? nl + 1 : NULL) {
		json_error_t je;
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (*p == '\0')
			continue;
		json_t *o = json_loads(p, 0, &je);
		cr_assert_not_null(o, "not JSON: %s", p);
		json_array_append_new(arr, o);
	}
	free(out);
	free(err);
	return arr;
}

Test(e2e_ground, verify_receipts_tamper_replay)
{
	const char *dir = tu_tmpdir();
	char datadir[TU_PATH_MAX], claims[TU_PATH_MAX], rid[64], vrid[64];
	anc_contract_id_str id;
	tu_sotu s;
	float *t = NULL;
	uint32_t nt = 0, tdim = 0;
	anc_error e;
	FILE *fp;
	json_t *o, *arr;
	size_t i;
	/* rows: expected, columns: verdict given */
	unsigned table[3][4];
	static const char *const vnames[] = {"supported", "weakly_supported",
	                                     "unsupported", "miscited"};
	static const char *const enames[] = {"supported", "miscited",
	                                     "unsupported"};

	memset(table, 0, sizeof table);
	snprintf(datadir, sizeof datadir, "%s", tu_path(dir, "data"));
	tu_server_start(&srv, datadir, tu_ipc_url(dir, "s"), NULL);
	tu_sotu_read(&s, COLL);
	tu_sotu_load_cli(dir, COLL, id, NULL);

	/* contract show prints the calibration (the load's writes wake the
	 * background calibration; verify would also compute it) */
	double t0 = tu_now();
	json_t *cal = NULL;
	do {
		json_decref(cal);
		o = cli_json((const char *const[]){"--json", "contract", "show",
		                                  COLL, id, NULL});
		cal = json_incref(json_object_get(o, "calibration"));
		json_decref(o);
	} while (json_is_null(cal) && tu_now() - t0 < 20 &&
	         usleep(200000) == 0);
	cr_assert(json_is_object(cal), "no calibration after 20 s");
	cr_assert_eq(json_integer_value(json_object_get(cal, "vectors")), 90);
	double weak = json_real_value(json_object_get(cal, "weak"));
	double strong = json_real_value(json_object_get(cal, "strong"));
	cr_assert(weak < strong);
	json_decref(cal);
	{
		char *out = NULL;
		cr_assert_eq(cli(&out, NULL, (const char *const[]){"contract",
		                 "show", COLL, id, NULL}), 0);
		cr_assert(strstr(out, "confidence  weak >= ") != NULL, "%s", out);
		free(out);
	}

	/* a query with a receipt: confidence strong for a passage's own
	 * vector, and a receipt ID in the provenance */
	o = cli_json((const char *const[]){"--json", "query", COLL, "--vectors",
	                                  tu_data_path(MINILM_FV), "--rows", "4",
	                                  "-k", "3", "--receipt", NULL});
	cr_assert_str_eq(json_string_value(json_object_get(o, "confidence")),
	                 "strong");
	json_t *pv = json_object_get(o, "provenance");
	cr_assert_str_eq(json_string_value(json_object_get(pv, "contract")), id);
	snprintf(rid, sizeof rid, "%s",
	         json_string_value(json_object_get(pv, "receipt")));
	cr_assert_eq(strlen(rid), 32);
	json_decref(o);

	/* verify: claims file with every case of the issue */
	cr_assert_eq(anc_fvecs_read(tu_data_path(TRANSPORT_FV), 0, 40, &t, &nt,
	                            &tdim, &e), ANC_OK, "%s", e.msg);
	snprintf(claims, sizeof claims, "%s", tu_path(dir, "claims.jsonl"));
	fp = fopen(claims, "w");
	cr_assert_not_null(fp);
	for (uint32_t r = 0; r < s.n; r++) /* own passage cited */
		fprintf(fp, "{\"row\": %u, \"cited\": [\"%s\"]}\n", r,
		        s.anchors[r]);
	for (uint32_t r = 0; r < s.n; r++) /* another passage cited */
		fprintf(fp, "{\"row\": %u, \"cited\": [\"%s\"]}\n", r,
		        s.anchors[(r + 37) % s.n]);
	for (uint32_t r = 0; r < nt; r++) { /* transport act, vector inline */
		fprintf(fp, "{\"vector\": [");
		for (uint32_t d = 0; d < tdim; d++)
			fprintf(fp, "%s%.9g", d ? "," : "", t[(size_t)r * tdim + d]);
		fprintf(fp, "], \"cited\": [\"%s\"]}\n", s.anchors[r % s.n]);
	}
	cr_assert_eq(fclose(fp), 0);
	arr = cli_json_lines((const char *const[]){"--json", "verify", COLL,
	                     "--contract", id, "--claims", claims, "--vectors",
	                     tu_data_path(MINILM_FV), "--receipt", NULL});
	uint32_t nclaims = 2 * s.n + nt;
	json_t *last = NULL;
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *c = json_array_get(arr, i);
		json_t *ln = json_object_get(c, "claim");
		if (ln == NULL) {
			last = c; /* thresholds + provenance after each batch */
			continue;
		}
		uint32_t line = (uint32_t)json_integer_value(ln) - 1;
		int exp = line < s.n ? 0 : line < 2 * s.n ? 1 : 2;
		const char *v = json_string_value(json_object_get(c, "verdict"));
		int vi = -1;
		for (int k = 0; k < 4; k++)
			if (strcmp(v, vnames[k]) == 0)
				vi = k;
		cr_assert_geq(vi, 0, "verdict %s", v);
		table[exp][vi]++;
		if (exp == 1) /* the claim's own passage is suggested */
			cr_assert_str_eq(json_string_value(
			    json_object_get(c, "suggested")),
			    s.anchors[line - s.n]);
	}
	printf("e2e verdict confusion table (rows expected, columns given; %u "
	       "claims)\n%-12s %10s %17s %12s %9s\n", nclaims, "", vnames[0],
	       vnames[1], vnames[2], vnames[3]);
	for (int x = 0; x < 3; x++)
		printf("%-12s %10u %17u %12u %9u\n", enames[x], table[x][0],
		       table[x][1], table[x][2], table[x][3]);
	printf("thresholds: weak %.4f strong %.4f\n", weak, strong);
	cr_assert_eq(table[0][0], s.n);
	cr_assert_eq(table[1][3], s.n);
	cr_assert_eq(table[2][2], nt);
	cr_assert_not_null(last);
	snprintf(vrid, sizeof vrid, "%s", json_string_value(json_object_get(
	    json_object_get(last, "provenance"), "receipt")));
	cr_assert_eq(strlen(vrid), 32);
	json_decref(arr);

	/* receipt show: authentic, same hits */
	o = cli_json((const char *const[]){"--json", "receipt", "show", rid,
	                                  "--text", NULL});
	cr_assert(json_is_true(json_object_get(o, "authentic")));
	cr_assert_str_eq(json_string_value(json_object_get(o, "kind")), "query");
	json_t *h0 = json_array_get(json_object_get(json_array_get(
	    json_object_get(o, "lists"), 0), "hits"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(h0, "anchor")),
	                 s.anchors[4]);
	cr_assert_str_eq(json_string_value(json_object_get(h0, "text")),
	                 s.text[4]);
	json_decref(o);

	/* edit the cited passage: replay reports the bumped revision */
	{
		char edit[TU_PATH_MAX];
		snprintf(edit, sizeof edit, "%s", tu_path(dir, "edit.jsonl"));
		fp = fopen(edit, "w");
		cr_assert_not_null(fp);
		fprintf(fp, "{\"source\": \"%s\", \"chunk\": \"%s\", \"text\": "
		        "\"edited passage\", \"vector\": [", s.source[4],
		        s.chunk[4]);
		for (uint32_t d = 0; d < s.dim; d++)
			fprintf(fp, "%s%.9g", d ? "," : "",
			        s.vecs[(size_t)4 * s.dim + d]);
		fprintf(fp, "]}\n");
		cr_assert_eq(fclose(fp), 0);
		char *out = NULL, *err = NULL;
		int st = cli(&out, &err, (const char *const[]){"load", COLL,
		             edit, "--contract", id, NULL});
		cr_assert_eq(st, 0, "load: %s %s", out, err);
		free(out);
		free(err);
	}
	o = cli_json((const char *const[]){"--json", "receipt", "replay", rid,
	                                  NULL});
	cr_assert(json_is_false(json_object_get(o, "unchanged")));
	json_t *ch = json_object_get(o, "changes");
	int bumped = 0;
	for (i = 0; i < json_array_size(ch); i++) {
		json_t *c = json_array_get(ch, i);
		if (strcmp(json_string_value(json_object_get(c, "kind")),
		           "revised") == 0 &&
		    strcmp(json_string_value(json_object_get(c, "anchor")),
		           s.anchors[4]) == 0 &&
		    json_integer_value(json_object_get(c, "old_revision")) == 1 &&
		    json_integer_value(json_object_get(c, "new_revision")) == 2)
			bumped++;
	}
	cr_assert_eq(bumped, 1, "replay did not report the bumped revision");
	json_decref(o);
	{
		char *out = NULL;
		cr_assert_eq(cli(&out, NULL, (const char *const[]){"receipt",
		                 "replay", rid, NULL}), 0);
		cr_assert(strstr(out, "revised: rev 1 -> 2") != NULL, "%s", out);
		free(out);
	}
	/* the verify receipt verifies too */
	o = cli_json((const char *const[]){"--json", "receipt", "show", vrid,
	                                  NULL});
	cr_assert_str_eq(json_string_value(json_object_get(o, "kind")),
	                 "verify");
	json_decref(o);

	/* stop, flip one byte of each stored receipt, restart: TAMPERED */
	tu_server_stop(&srv);
	/* one byte of every stored receipt of the stopped server */
	(void)tu_db_receipts_tamper(datadir, 3, 0x20, 1);
	tu_server_start(&srv, datadir, tu_ipc_url(dir, "s"), NULL);
	{
		char *out = NULL, *err = NULL;
		int st = cli(&out, &err, (const char *const[]){"receipt", "show",
		             rid, NULL});
		cr_assert_eq(st, 1, "exit %d: %s", st, out);
		cr_assert(strstr(err, "anchorage: error: TAMPERED: ") != NULL,
		          "%s", err);
		cr_assert_eq(out[0], '\0', "a tampered receipt was printed: %s",
		             out);
		free(out);
		free(err);
		st = cli(&out, &err, (const char *const[]){"receipt", "replay",
		         vrid, NULL});
		cr_assert_eq(st, 1);
		cr_assert(strstr(err, "TAMPERED") != NULL, "%s", err);
		free(out);
		free(err);
	}
	/* bad IDs are usage errors; unknown ones NOT_FOUND */
	{
		char *err = NULL;
		cr_assert_eq(cli(NULL, &err, (const char *const[]){"receipt",
		                 "show", "nothex", NULL}), 2);
		free(err);
		cr_assert_eq(cli(NULL, &err, (const char *const[]){"receipt",
		             "show", "00000000000000000000000000000000", NULL}),
		             1);
		cr_assert(strstr(err, "NOT_FOUND") != NULL, "%s", err);
		free(err);
	}
	tu_server_stop(&srv);
	free(t);
	tu_sotu_free(&s);
}

Test(e2e_ground, verify_refuses_bad_claims_files)
{
	const char *dir = tu_tmpdir();
	char f[TU_PATH_MAX];
	anc_contract_id_str id;
	static const char *const bad[] = {
	    "not json\n",
	    "{\"row\": 0, \"cited\": []}\n",             /* row without --vectors */
	    "{\"vector\": [1, 2], \"cited\": [\"x\"]}\n", /* bad anchor */
	    "{\"vector\": [1, 2], \"cited\": []}\n",   /* wrong dim (server) */
	    "{\"cited\": []}\n",                       /* no vector */
	    "{\"vector\": [1, 2], \"cited\": [], \"revisions\": [1]}\n",
	    "{\"vector\": [1, 2]}\n",                  /* no cited */
	    "{\"vector\": [1, 2], \"cite\": []}\n",    /* misspelt key */
	};
	static const char *const names[] = {"MALFORMED", "INVALID_ARGUMENT",
	                                    "INVALID_ARGUMENT",
	                                    "DIMENSION_MISMATCH",
	                                    "INVALID_ARGUMENT",
	                                    "INVALID_ARGUMENT",
	                                    "bad.jsonl:1: cited: required",
	                                    "unknown key 'cite'"};

	tu_server_start(&srv, tu_path(dir, "data"), tu_ipc_url(dir, "s"), NULL);
	tu_sotu_load_cli(dir, COLL, id, NULL);
	snprintf(f, sizeof f, "%s", tu_path(dir, "bad.jsonl"));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *out = NULL, *err = NULL;
		tu_file_write(f, bad[i], (size_t)-1);
		int st = cli(&out, &err, (const char *const[]){"verify", COLL,
		             "--claims", f, NULL});
		cr_assert_eq(st, 1, "case %zu: exit %d: %s", i, st, err);
		cr_assert(strstr(err, names[i]) != NULL, "case %zu: %s", i, err);
		cr_assert_eq(tu_line_count(err), 1);
		free(out);
		free(err);
	}
	/* More claims than one request holds (1024): an error the server
	 * gives about a claim of the second request names its file line,
	 * and with --receipt each receipt says which lines it covers. */
	{
		char *out = NULL, *err = NULL;
		char fv[TU_PATH_MAX];
		snprintf(fv, sizeof fv, "%s", tu_data_path(MINILM_FV));
		FILE *fp = fopen(f, "w");
		cr_assert_not_null(fp);
		for (int i = 1; i <= 1100; i++) {
			if (i == 1050) { /* not unit norm: refused by the server */
				fputs("{\"vector\": [", fp);
				for (int k = 0; k < 384; k++)
					fprintf(fp, "%s0.2", k ? "," : "");
				fputs("], \"cited\": []}\n", fp);
			} else {
				fprintf(fp, "{\"row\": %d, \"cited\": []}\n", i % 90);
			}
		}
		fclose(fp);
		int st = cli(&out, &err, (const char *const[]){"verify", COLL,
		             "--claims", f, "--vectors", fv, NULL});
		cr_assert_eq(st, 1, "%s", err);
		cr_assert_not_null(strstr(err, "bad.jsonl:1050: "), "%s", err);
		free(out);
		free(err);
		fp = fopen(f, "w");
		cr_assert_not_null(fp);
		for (int i = 1; i <= 1100; i++)
			fprintf(fp, "{\"row\": %d, \"cited\": []}\n", i % 90);
		fclose(fp);
		st = cli(&out, &err, (const char *const[]){"verify", COLL,
		         "--claims", f, "--vectors", fv, "--receipt", NULL});
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "covers lines 1-1024 of "), "%s",
		                   out);
		cr_assert_not_null(strstr(out, "covers lines 1025-1100 of "),
		                   "%s", out);
		free(out);
		free(err);
	}
	/* a missing --claims is a usage error */
	cr_assert_eq(cli(NULL, NULL, (const char *const[]){"verify", COLL,
	                 NULL}), 2);
	/* the server is still fine */
	cr_assert_eq(cli(NULL, NULL, (const char *const[]){"ping", NULL}), 0);
	tu_server_stop(&srv);
}
