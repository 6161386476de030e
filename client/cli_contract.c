/*
 * cli_contract.c — `anchorage contract ...`: register, list, show, promote,
 * retire, check and compare embedding contracts (a migration to a new
 * embedding model, step by step; README "Migrating to a new embedding
 * model").
 *
 * Design note
 * -----------
 * The ops contract_promote, contract_retire, contract_check and
 * contract_register with canaries go through anc_client_call, which sets
 * the request ID and the API key and applies the same checks as every
 * other call (request ID matched, server errors returned as their code with
 * "NAME: message"). list and show read `info` and pick the collection and
 * contract locally, so they work against any server that speaks info.
 *
 * compare is purely client-side: it sends the same queries embedded under
 * both contracts to both indexes and measures overlap@k of the anchor sets,
 * |A ∩ B| / max(|A|, |B|) per query (1 when both are empty): anchors are
 * shared by all contracts of a collection, so identical answers give 1.0.
 *
 * check exits with status 1 (CONTRACT_VIOLATION) when a probe fails, after
 * printing the per-probe results, so that a cron job or CI step can alert
 * on it.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_ground.h"
#include "cli_vecfile.h"

#define CANARY_FILE_MAX (64u << 20)
#define COMPARE_BATCH 128

static const char contract_usage[] =
    "usage: anchorage contract SUBCOMMAND ...\n\n"
    "  register COLLECTION FILE.json [--canaries FILE.jsonl]\n"
    "                        register an embedding contract (immutable)\n"
    "  list COLLECTION       contracts with state, coverage, canary check\n"
    "  show COLLECTION CONTRACT\n"
    "                        one contract in full\n"
    "  promote COLLECTION CONTRACT [--force]\n"
    "                        make it the default (needs 100% coverage)\n"
    "  retire COLLECTION CONTRACT\n"
    "                        refuse queries and writes under it from now on\n"
    "  check COLLECTION CONTRACT --vectors FILE.fvecs [--rows A-B]\n"
    "                        canary check: is today's embedder the same?\n"
    "  compare COLLECTION OLD NEW --queries-old F1.fvecs --queries-new "
    "F2.fvecs\n"
    "          [-k 10] [--rows A-B]\n"
    "                        overlap@k of both contracts' answers\n\n"
    "CONTRACT is a contract ID (16 hex digits) or NAME@REVISION. Each "
    "subcommand\nhas --help; --json (before the command) prints JSON.\n";

/* ---- one round trip ------------------------------------------------------ */

static int
contract_call(anc_cli_ctx *ctx, anc_req *req, anc_resp **out, anc_error *err)
{
	int code;
	*out = NULL;
	if ((code = anc_cli_connect(ctx, err)) != ANC_OK)
		return code;
	return anc_client_call(ctx->client, req, out, err);
}

/* ---- canary files --------------------------------------------------------- */

typedef struct canary_file {
	anc_canary *cs;
	char **text;
	float **vec;
	uint32_t n;
} canary_file;

static void
canary_file_free(canary_file *f)
{
	for (uint32_t i = 0; i < f->n; i++) {
		free(f->text[i]);
		free(f->vec[i]);
	}
	free(f->cs);
	free(f->text);
	free(f->vec);
	memset(f, 0, sizeof(*f));
}

/* One line {"text": str, "vector": [numbers]}; nothing else. */
static int
canary_line(const char *path, uint32_t lineno, const char *line, size_t len,
            canary_file *f, anc_error *err)
{
	static const char *const canary_keys[] = {"text", "vector", NULL};
	json_error_t je;
	json_t *o, *t, *v;
	const char *key;
	char *vs = NULL;
	int code = ANC_OK;
	uint32_t i = f->n;

	if ((o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return anc_error_set(err, ANC_EMALFORMED, "%s:%u:%d: %s", path,
		    lineno, je.column, je.text);
	if (!json_is_object(o)) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s:%u: expected a JSON object {\"text\", \"vector\"}", path,
		    lineno);
		goto leave;
	}
	if ((key = anc_cli_json_unknown_key(o, canary_keys)) != NULL) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%u: unknown key '%s', expected text and vector", path,
		    lineno, key);
		goto leave;
	}
	t = json_object_get(o, "text");
	v = json_object_get(o, "vector");
	if (!json_is_string(t) || json_string_length(t) == 0 ||
	    json_string_length(t) > ANC_CANARY_TEXT_MAX) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%u: text: expected a string of 1..%d bytes", path,
		    lineno, ANC_CANARY_TEXT_MAX);
		goto leave;
	}
	if (!json_is_array(v)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s:%u: vector: expected an array of numbers", path, lineno);
		goto leave;
	}
	if (f->n >= ANC_CANARY_MAX) {
		code = anc_error_set(err, ANC_ETOOBIG,
		    "%s:%u: more than %d canary probes", path, lineno,
		    ANC_CANARY_MAX);
		goto leave;
	}
	if ((vs = json_dumps(v, JSON_COMPACT)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	f->text[i] = strdup(json_string_value(t));
	if (f->text[i] == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	f->n++; /* owns text[i] from here; vec[i] NULL until parsed */
	if ((code = anc_cli_vector_parse(vs, "vector", &f->vec[i],
	         &f->cs[i].dim, err)) != ANC_OK) {
		anc_error_wrap(err, "%s:%u", path, lineno);
		goto leave;
	}
	f->cs[i].text = f->text[i];
	f->cs[i].vec = f->vec[i];
leave:
	free(vs);
	json_decref(o);
	return code;
}

static int
canary_file_read(const char *path, canary_file *f, anc_error *err)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint32_t lineno = 0;
	int code = ANC_OK;

	memset(f, 0, sizeof(*f));
	if ((fp = fopen(path, "r")) == NULL)
		return anc_error_set(err, ANC_EIO, "--canaries %s: %s", path,
		    strerror(errno));
	f->cs = calloc(ANC_CANARY_MAX, sizeof(*f->cs));
	f->text = calloc(ANC_CANARY_MAX, sizeof(*f->text));
	f->vec = calloc(ANC_CANARY_MAX, sizeof(*f->vec));
	if (f->cs == NULL || f->text == NULL || f->vec == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((code = canary_line(path, lineno, line, (size_t)len, f,
		         err)) != ANC_OK)
			goto leave;
	}
	if (ferror(fp)) {
		code = anc_error_set(err, ANC_EIO, "--canaries %s: read error",
		    path);
		goto leave;
	}
	if (f->n == 0)
		code = anc_error_set(err, ANC_EINVAL,
		    "--canaries %s: no probes (expected 1..%d lines of "
		    "{\"text\", \"vector\"})", path, ANC_CANARY_MAX);
leave:
	free(line);
	fclose(fp);
	if (code != ANC_OK)
		canary_file_free(f);
	return code;
}

/* ---- register --------------------------------------------------------------- */

static int
cmd_register(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage contract register COLLECTION FILE.json "
	    "[--canaries FILE.jsonl]\n\n"
	    "Register an embedding contract. FILE.json:\n"
	    "  {\"name\": \"minilm\", \"model\": \"all-MiniLM-L6-v2\", "
	    "\"revision\": \"1\", \"dim\": 384,\n"
	    "   \"metric\": \"cosine\"|\"ip\"|\"l2\", \"normalize\": true,\n"
	    "   \"preprocess\": \"free text (optional)\",\n"
	    "   \"index\": {\"kind\": \"flat\"} | {\"kind\": \"hnsw\", \"m\": 32, "
	    "\"ef_construction\": 200, \"ef_search\": 64}}\n"
	    "Index kinds (optional keys, defaults): flat; hnsw and hnsw_sq8 (m 32,\n"
	    "ef_construction 200, ef_search 64); ivf_flat (nlist 256, nprobe 16);\n"
	    "ivf_pq (nlist, nprobe, pq_m, pq_nbits 8). Unknown keys are errors.\n"
	    "One name@revision names one contract: the same one again is fine "
	    "(same ID),\none with another model, dim, metric, normalize or "
	    "preprocess is a CONFLICT.\nThe first contract of a collection is its "
	    "default; later ones start as migrating.\n\n"
	    "--canaries FILE.jsonl: canary probes, one per line (at most 64):\n"
	    "  {\"text\": \"probe text\", \"vector\": [the model's vector for "
	    "it]}\n"
	    "They are stored with the contract (not part of its ID) and fixed: "
	    "registering\nthe same contract with other probes is a CONFLICT. "
	    "`contract check` compares\ntoday's embeddings of the same texts "
	    "with them.\n\n"
	    "The contract ID is printed alone on the last line (capture it with "
	    "| tail -1).\n";
	const char *canaries = NULL;
	int want_help = 0;
	const anc_cli_optspec specs[] = {{"--canaries", &canaries, NULL},
	    {"--help", NULL, &want_help}, {"-h", NULL, &want_help},
	    {NULL, NULL, NULL}};
	const char *pos[2];
	canary_file cf;
	anc_req req;
	anc_contract c;
	uint8_t raw[ANC_CONTRACT_ID_RAW];
	anc_contract_id_str local;
	anc_resp *resp = NULL;
	int npos, helped, code;

	memset(&cf, 0, sizeof(cf));
	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos < 2)
		return anc_cli_missing(ctx, "contract register",
		    npos < 1 ? "COLLECTION and FILE.json" : "FILE.json", err);
	if ((code = anc_collection_name_check(pos[0], err)) ||
	    (code = anc_cli_contract_load(pos[1], &c, err)))
		return code;
	if (canaries != NULL &&
	    (code = canary_file_read(canaries, &cf, err)) != ANC_OK)
		return code;
	for (uint32_t i = 0; i < cf.n; i++)
		if (cf.cs[i].dim != c.dim) {
			code = anc_error_set(err, ANC_EDIM,
			    "--canaries %s: probe %u has %u values, the contract's "
			    "dim is %u", canaries, i, cf.cs[i].dim, c.dim);
			goto leave;
		}
	anc_contract_id(&c, raw);
	anc_contract_id_format(raw, local);
	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_CONTRACT_REGISTER;
	req.u.contract_register.collection = pos[0];
	req.u.contract_register.contract = c;
	req.u.contract_register.canaries = cf.cs;
	req.u.contract_register.ncanaries = cf.n;
	if ((code = contract_call(ctx, &req, &resp, err)))
		goto leave;
	if (strcmp(local, resp->u.contract_register.id) != 0)
		fprintf(stderr, "anchorage: warning: server gave contract id %s, "
		    "computed locally %s\n", resp->u.contract_register.id, local);
	if (ctx->json) {
		code = anc_cli_json_emit(stdout,
		    json_pack("{s:o,s:o,s:o,s:b,s:i}", "id",
		    anc_cli_json_str(resp->u.contract_register.id), "collection",
		    anc_cli_json_str(pos[0]), "contract",
		    json_sprintf("%s@%s", c.name, c.revision), "created",
		    resp->u.contract_register.created, "canaries", (int)cf.n),
		    err);
	} else {
		printf("%s contract %s@%s (dim %u, %s, %s, %u canar%s) in "
		    "collection %s\n",
		    resp->u.contract_register.created ? "registered"
		                                      : "already registered:",
		    c.name, c.revision, c.dim, anc_metric_name(c.metric),
		    anc_index_kind_name(c.index.kind), cf.n,
		    cf.n == 1 ? "y" : "ies", pos[0]);
		printf("%s\n", resp->u.contract_register.id);
	}
leave:
	anc_resp_free(resp);
	canary_file_free(&cf);
	return code;
}

/* ---- list / show -------------------------------------------------------------- */

/* Fetch info and find the collection (and, when ref is not NULL, the
 * contract named by ID or name@revision). *resp owns both pointers. */
static int
info_find(anc_cli_ctx *ctx, const char *coll, const char *ref,
          anc_resp **resp, const anc_collection_info **ci,
          const anc_contract_info **ki, anc_error *err)
{
	int code;

	*resp = NULL;
	if ((code = anc_collection_name_check(coll, err)) ||
	    (code = anc_cli_connect(ctx, err)) ||
	    (code = anc_client_info(ctx->client, resp, err)))
		return code;
	*ci = NULL;
	for (uint32_t i = 0; i < (*resp)->u.info.ncollections; i++)
		if (strcmp((*resp)->u.info.collections[i].name, coll) == 0)
			*ci = &(*resp)->u.info.collections[i];
	if (*ci == NULL) {
		code = anc_error_set(err, ANC_ENOCOLL,
		    "collection '%s': not found", coll);
		goto fail;
	}
	if (ref == NULL)
		return ANC_OK;
	*ki = NULL;
	for (uint32_t j = 0; j < (*ci)->ncontracts && *ki == NULL; j++) {
		const anc_contract_info *k = &(*ci)->contracts[j];
		const char *at = strchr(ref, '@');
		if (strcmp(k->id, ref) == 0 ||
		    (at != NULL && strlen(k->contract.name) == (size_t)(at - ref) &&
		     strncmp(k->contract.name, ref, (size_t)(at - ref)) == 0 &&
		     strcmp(k->contract.revision, at + 1) == 0))
			*ki = k;
	}
	if (*ki == NULL) {
		code = anc_error_set(err, ANC_ENOCONTRACT,
		    "collection '%s': unknown contract '%s'; the default "
		    "contract is %s", coll, ref,
		    (*ci)->default_contract[0] ? (*ci)->default_contract
		                               : "none");
		goto fail;
	}
	return ANC_OK;
fail:
	anc_resp_free(*resp);
	*resp = NULL;
	return code;
}

static double
coverage(const anc_collection_info *ci, const anc_contract_info *k)
{
	return ci->live == 0 ? 1.0 : (double)k->vectors / (double)ci->live;
}

static void
time_fmt(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
contract_json(const anc_collection_info *ci, const anc_contract_info *k)
{
	char ts[32];
	json_t *o;

	time_fmt(k->checked_at, ts, sizeof(ts));
	o = json_pack("{s:o,s:o,s:o,s:o,s:I,s:o,s:b,s:o,s:o,s:o,s:I,s:I,s:f,"
	    "s:I,s:i}",
	    "id", anc_cli_json_str(k->id),
	    "name", anc_cli_json_str(k->contract.name),
	    "revision", anc_cli_json_str(k->contract.revision),
	    "model", anc_cli_json_str(k->contract.model),
	    "dim", (json_int_t)k->contract.dim,
	    "metric", anc_cli_json_str(anc_metric_name(k->contract.metric)),
	    "normalize", k->contract.normalize,
	    "preprocess", anc_cli_json_str(k->contract.preprocess),
	    "index", anc_cli_json_str(anc_index_kind_name(
	        k->contract.index.kind)),
	    "state", anc_cli_json_str(anc_contract_state_name(k->state)),
	    "vectors", (json_int_t)k->vectors,
	    "live", (json_int_t)ci->live,
	    "coverage", coverage(ci, k),
	    "index_ntotal", (json_int_t)k->index_ntotal,
	    "canaries", (int)k->canaries);
	if (o != NULL) {
		/* issue 6: memory per vector of the serving index */
		json_object_set_new(o, "index_bytes_per_vector",
		    json_integer(k->index_bytes));
		json_object_set_new(o, "code_bytes_per_vector",
		    json_integer(k->code_bytes));
		json_object_set_new(o, "trained", json_boolean(k->trained));
	}
	if (o == NULL)
		return NULL;
	if (k->state == ANC_CSTATE_RETIRED) {
		/* not counted by the server (its index is dropped) */
		json_object_set_new(o, "vectors", json_null());
		json_object_set_new(o, "coverage", json_null());
	}
	if (k->checked_at == 0) {
		json_object_set_new(o, "last_check", json_null());
	} else {
		json_object_set_new(o, "last_check", json_pack(
		    "{s:I,s:s,s:b,s:f}", "checked_at", (json_int_t)k->checked_at,
		    "time", ts, "pass", k->check_pass, "min_cosine",
		    (double)k->check_min_cosine));
	}
	json_object_set_new(o, "default",
	    json_boolean(strcmp(ci->default_contract, k->id) == 0));
	/* issue 8: confidence calibration, null until computed */
	json_object_set_new(o, "calibration", anc_cli_calib_json(&k->calib));
	return o;
}

static int
cmd_list(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage contract list COLLECTION\n\n"
	    "One line per contract: ID, NAME@REVISION, DIM, STATE, VECTORS, "
	    "COVERAGE (live\npassages with a vector under it), canaries and the "
	    "last canary check.\nWith --json one object {\"collection\", "
	    "\"live\", \"default_contract\", \"contracts\":[...]}.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = {{"--help", NULL, &want_help},
	    {"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[1];
	const anc_collection_info *ci;
	const anc_contract_info *ki = NULL;
	anc_resp *resp = NULL;
	char nr[ANC_CNAME_MAX + ANC_REVISION_MAX + 2], chk[64];
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 1, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos < 1)
		return anc_cli_missing(ctx, "contract list", "COLLECTION", err);
	if ((code = info_find(ctx, pos[0], NULL, &resp, &ci, &ki, err)))
		return code;
	if (ctx->json) {
		json_t *arr = json_array();
		for (uint32_t j = 0; arr != NULL && j < ci->ncontracts; j++)
			json_array_append_new(arr,
			    contract_json(ci, &ci->contracts[j]));
		code = anc_cli_json_emit(stdout, json_pack("{s:o,s:I,s:o,s:o}",
		    "collection", anc_cli_json_str(ci->name), "live",
		    (json_int_t)ci->live, "default_contract",
		    anc_cli_json_str(ci->default_contract), "contracts", arr),
		    err);
	} else {
		printf("collection %s: %llu live passages, default contract "
		    "%s\n", ci->name, (unsigned long long)ci->live,
		    ci->default_contract[0] ? ci->default_contract : "(none)");
		printf("%-16s  %-28s %6s  %-9s  %8s  %8s  %8s  %s\n", "ID",
		    "NAME@REVISION", "DIM", "STATE", "VECTORS", "COVERAGE",
		    "CANARIES", "LAST CHECK");
		for (uint32_t j = 0; j < ci->ncontracts; j++) {
			const anc_contract_info *k = &ci->contracts[j];
			snprintf(nr, sizeof(nr), "%s@%s", k->contract.name,
			    k->contract.revision);
			if (k->checked_at == 0)
				snprintf(chk, sizeof(chk), "never");
			else
				snprintf(chk, sizeof(chk), "%s (min cos %.4f)",
				    k->check_pass ? "pass" : "FAIL",
				    (double)k->check_min_cosine);
			char vec[24] = "-", cov[16] = "-";
			if (k->state != ANC_CSTATE_RETIRED) {
				snprintf(vec, sizeof vec, "%llu",
				    (unsigned long long)k->vectors);
				snprintf(cov, sizeof cov, "%.1f%%",
				    100.0 * coverage(ci, k));
			}
			printf("%-16s  %-28s %6u  %-9s  %8s  %8s  %8u  %s\n",
			    k->id, nr, k->contract.dim,
			    anc_contract_state_name(k->state), vec, cov,
			    k->canaries, chk);
		}
	}
	anc_resp_free(resp);
	return code;
}

static int
cmd_show(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage contract show COLLECTION CONTRACT\n\n"
	    "Everything about one contract: its fields, state, coverage (live "
	    "passages with\na vector under it), index entries, canary probes "
	    "and the last canary check\n(time, pass/fail, lowest cosine). "
	    "CONTRACT: ID or NAME@REVISION.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = {{"--help", NULL, &want_help},
	    {"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[2];
	const anc_collection_info *ci;
	const anc_contract_info *k;
	anc_resp *resp = NULL;
	char ts[32];
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos < 2)
		return anc_cli_missing(ctx, "contract show",
		    npos ? "CONTRACT" : "COLLECTION and CONTRACT", err);
	if ((code = info_find(ctx, pos[0], pos[1], &resp, &ci, &k, err)))
		return code;
	if (ctx->json) {
		json_t *o = contract_json(ci, k);
		if (o != NULL)
			json_object_set_new(o, "collection",
			    anc_cli_json_str(ci->name));
		code = anc_cli_json_emit(stdout, o, err);
	} else {
		time_fmt(k->checked_at, ts, sizeof(ts));
		printf("contract %s  %s@%s  in collection %s\n", k->id,
		    k->contract.name, k->contract.revision, ci->name);
		printf("  model       %s\n", k->contract.model);
		printf("  dim         %u\n", k->contract.dim);
		printf("  metric      %s\n", anc_metric_name(k->contract.metric));
		printf("  normalize   %s\n", k->contract.normalize ? "true"
		                                                   : "false");
		printf("  preprocess  %s\n", k->contract.preprocess[0]
		                                 ? k->contract.preprocess : "-");
		printf("  index       %s\n",
		    anc_index_kind_name(k->contract.index.kind));
		printf("  state       %s\n", anc_contract_state_name(k->state));
		if (k->state == ANC_CSTATE_RETIRED)
			printf("  coverage    not counted (retired: its index is "
			    "dropped, its vectors stay in LMDB)\n");
		else
			printf("  coverage    %llu of %llu live passages "
			    "(%.1f%%)\n", (unsigned long long)k->vectors,
			    (unsigned long long)ci->live,
			    100.0 * coverage(ci, k));
		if (k->state != ANC_CSTATE_RETIRED)
			printf("  memory      %llu entries (including stale), %u "
			    "bytes per vector (%u of them the code)%s\n",
			    (unsigned long long)k->index_ntotal, k->index_bytes,
			    k->code_bytes,
			    k->trained ? "" : ", exact until trained");
		printf("  canaries    %u probe%s\n", k->canaries,
		    k->canaries == 1 ? "" : "s");
		if (k->checked_at == 0)
			printf("  last check  never\n");
		else
			printf("  last check  %s: %s, min cosine %.6f "
			    "(threshold %.2f)\n", ts,
			    k->check_pass ? "pass" : "FAIL",
			    (double)k->check_min_cosine,
			    (double)ANC_CANARY_THRESHOLD);
		{
			/* issue 8: what "strong" and "weak" mean here */
			char cal[256];
			anc_cli_calib_line(&k->calib, cal, sizeof cal);
			printf("  confidence  %s\n", cal);
			if (k->calib.computed_at != 0)
				printf("              random pairs p50 %.4f p99 "
				    "%.4f; nearest neighbour p05 %.4f p50 "
				    "%.4f\n", (double)k->calib.random_p50,
				    (double)k->calib.random_p99,
				    (double)k->calib.nn_p05,
				    (double)k->calib.nn_p50);
		}
	}
	anc_resp_free(resp);
	return code;
}

/* ---- promote / retire ----------------------------------------------------------- */

static int
cmd_state(anc_cli_ctx *ctx, int argc, char **argv, int promote,
          anc_error *err)
{
	static const char promote_usage[] =
	    "usage: anchorage contract promote COLLECTION CONTRACT [--force]\n\n"
	    "Make CONTRACT the collection's default (queries that name no "
	    "contract use it).\nThe previous default becomes migrating: still "
	    "queryable and writable, so the\npromotion can be undone by "
	    "promoting it back. Refused (FAILED_PRECONDITION)\nwhen CONTRACT "
	    "covers fewer than all live passages, unless --force.\n";
	static const char retire_usage[] =
	    "usage: anchorage contract retire COLLECTION CONTRACT\n\n"
	    "Retire CONTRACT: queries and upserts under it get CONTRACT_RETIRED "
	    "from now on,\nand it cannot be promoted again. The default cannot "
	    "be retired (promote another\nfirst). Its vectors stay on disk "
	    "until their passages are deleted; its index\ncounts as dropped "
	    "at once (0 entries, no drift series) and its memory is freed\n"
	    "at the next server restart.\n";
	int want_help = 0, force = 0;
	anc_cli_optspec specs[] = {{"--help", NULL, &want_help},
	    {"-h", NULL, &want_help}, {"--force", NULL, &force},
	    {NULL, NULL, NULL}};
	const char *pos[2];
	anc_req req;
	anc_resp *resp = NULL;
	int npos, helped, code;

	if (!promote)
		specs[2].name = NULL; /* retire has no --force */
	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	         promote ? promote_usage : retire_usage, &helped, err)) ||
	    helped)
		return code;
	if (npos < 2)
		return anc_cli_missing(ctx,
		    promote ? "contract promote" : "contract retire",
		    npos ? "CONTRACT" : "COLLECTION and CONTRACT", err);
	if ((code = anc_collection_name_check(pos[0], err)))
		return code;
	memset(&req, 0, sizeof(req));
	req.op = promote ? ANC_OP_CONTRACT_PROMOTE : ANC_OP_CONTRACT_RETIRE;
	req.u.contract_state.collection = pos[0];
	req.u.contract_state.contract = pos[1];
	req.u.contract_state.force = force;
	if ((code = contract_call(ctx, &req, &resp, err)))
		return code;
	if (ctx->json) {
		json_t *o = json_pack("{s:o,s:o,s:o}", "collection",
		    anc_cli_json_str(pos[0]), "id",
		    anc_cli_json_str(resp->u.contract_state.id), "state",
		    anc_cli_json_str(anc_contract_state_name(
		        resp->u.contract_state.state)));
		if (o != NULL && promote)
			json_object_set_new(o, "previous_default",
			    resp->u.contract_state.previous[0]
			        ? anc_cli_json_str(resp->u.contract_state.previous)
			        : json_null());
		code = anc_cli_json_emit(stdout, o, err);
	} else if (promote) {
		if (resp->u.contract_state.previous[0])
			printf("contract %s is now the default of collection %s; "
			    "%s is migrating\n", resp->u.contract_state.id, pos[0],
			    resp->u.contract_state.previous);
		else
			printf("contract %s is the default of collection %s\n",
			    resp->u.contract_state.id, pos[0]);
	} else {
		printf("contract %s of collection %s is retired\n",
		    resp->u.contract_state.id, pos[0]);
	}
	anc_resp_free(resp);
	return code;
}

/* ---- check ------------------------------------------------------------------------ */

static int
rows_opt(const char *rows, uint32_t *begin, uint32_t *end, anc_error *err)
{
	*begin = 0;
	*end = UINT32_MAX;
	if (rows == NULL)
		return ANC_OK;
	int rv;
	if ((rv = anc_cli_rows_parse(rows, begin, end, err)) != ANC_OK) {
		anc_error_wrap(err, "--rows");
		return rv;
	}
	return ANC_OK;
}

static int
cmd_check(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage contract check COLLECTION CONTRACT --vectors "
	    "FILE.fvecs [--rows A-B]\n\n"
	    "Canary check. Embed the contract's canary probe texts with the "
	    "embedder you use\ntoday, in probe order, into FILE.fvecs (row i = "
	    "probe i), and the server answers\nper probe the cosine with the "
	    "reference vector registered with the contract.\nA probe passes at "
	    "cosine >= 0.99: the same model on the same text reproduces its\n"
	    "vector to ~1e-6, so 0.99 leaves room for float noise and batching, "
	    "while another\nmodel or revision scores far lower. The server "
	    "remembers the result (contract\nshow). Exit status 1 "
	    "(CONTRACT_VIOLATION) when any probe fails.\n";
	const char *vectors = NULL, *rows = NULL;
	int want_help = 0;
	const anc_cli_optspec specs[] = {{"--vectors", &vectors, NULL},
	    {"--rows", &rows, NULL}, {"--help", NULL, &want_help},
	    {"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[2];
	anc_req req;
	anc_resp *resp = NULL;
	float *vecs = NULL;
	uint32_t nrows = 0, dim = 0, b, e, nfail = 0;
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos < 2)
		return anc_cli_missing(ctx, "contract check",
		    npos ? "CONTRACT" : "COLLECTION and CONTRACT", err);
	if (vectors == NULL)
		return anc_cli_usage(ctx, err, "contract check: --vectors "
		    "FILE.fvecs is required (see anchorage contract check "
		    "--help)");
	if ((code = anc_collection_name_check(pos[0], err)) ||
	    (code = rows_opt(rows, &b, &e, err)) ||
	    (code = anc_cli_vectors_read(vectors, b, e, &vecs, &nrows, &dim,
	         err)))
		return code;
	if (nrows == 0 || nrows > ANC_CANARY_MAX) {
		code = anc_error_set(err, ANC_EINVAL, "--vectors %s: %u rows, "
		    "expected 1..%d (one per canary probe)", vectors, nrows,
		    ANC_CANARY_MAX);
		goto leave;
	}
	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_CONTRACT_CHECK;
	req.u.contract_check.collection = pos[0];
	req.u.contract_check.contract = pos[1];
	req.u.contract_check.vectors = vecs;
	req.u.contract_check.n = nrows;
	req.u.contract_check.dim = dim;
	if ((code = contract_call(ctx, &req, &resp, err)))
		goto leave;
	const anc_check_result *r = &resp->u.check;
	for (uint32_t i = 0; i < r->n; i++)
		nfail += !r->results[i].pass;
	if (ctx->json) {
		json_t *arr = json_array();
		for (uint32_t i = 0; arr != NULL && i < r->n; i++)
			json_array_append_new(arr, json_pack("{s:i,s:f,s:b}",
			    "probe", (int)r->results[i].probe, "cosine",
			    (double)r->results[i].cosine, "pass",
			    r->results[i].pass));
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:o,s:o,s:o,s:f,s:f,s:b,s:I}", "collection",
		    anc_cli_json_str(pos[0]), "contract",
		    anc_cli_json_str(r->contract), "results", arr, "threshold",
		    (double)r->threshold, "min_cosine", (double)r->min_cosine,
		    "pass", r->pass, "checked_at", (json_int_t)r->checked_at),
		    err);
	} else {
		printf("canary check of contract %s in collection %s "
		    "(threshold %.2f)\n", r->contract, pos[0],
		    (double)r->threshold);
		for (uint32_t i = 0; i < r->n; i++)
			printf("  probe %2u  cosine %9.6f  %s\n",
			    r->results[i].probe, (double)r->results[i].cosine,
			    r->results[i].pass ? "pass" : "FAIL");
		printf("%s: %u of %u probes pass, min cosine %.6f\n",
		    r->pass ? "PASS" : "FAIL", r->n - nfail, r->n,
		    (double)r->min_cosine);
	}
	if (code == ANC_OK && !r->pass)
		code = anc_error_set(err, ANC_EVIOLATION,
		    "canary check failed: %u of %u probes below cosine %.2f "
		    "(min %.4f): the embedder is not the model of contract %s",
		    nfail, r->n, (double)r->threshold, (double)r->min_cosine,
		    r->contract);
leave:
	anc_resp_free(resp);
	free(vecs);
	return code;
}

/* ---- compare ------------------------------------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* overlap of two hit lists' anchor sets: |A ∩ B| / max(|A|, |B|). */
static double
overlap(const anc_hitlist *a, const anc_hitlist *b)
{
	uint32_t both = 0, m = a->nhits > b->nhits ? a->nhits : b->nhits;
	if (m == 0)
		return 1.0;
	for (uint32_t i = 0; i < a->nhits; i++)
		for (uint32_t j = 0; j < b->nhits; j++)
			if (strcmp(a->hits[i].anchor, b->hits[j].anchor) == 0) {
				both++;
				break;
			}
	return (double)both / (double)m;
}

static int
cmd_compare(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage contract compare COLLECTION OLD NEW "
	    "--queries-old F1.fvecs\n"
	    "                                  --queries-new F2.fvecs [-k 10] "
	    "[--rows A-B]\n\n"
	    "Shadow comparison before a cut-over: row i of F1 and row i of F2 "
	    "are the same\nquery embedded under OLD and under NEW. Each is "
	    "answered by its contract's index\nand the anchor sets are "
	    "compared: overlap@k = |A and B| / k per query (k: the\nlonger "
	    "list, when the collection has fewer than k passages). Prints the "
	    "mean,\nthe 10th percentile and the minimum. 1.0 means the "
	    "migration does not change\nanswers. With --json one object.\n";
	const char *qold = NULL, *qnew = NULL, *kstr = NULL, *rows = NULL;
	int want_help = 0;
	const anc_cli_optspec specs[] = {{"--queries-old", &qold, NULL},
	    {"--queries-new", &qnew, NULL}, {"-k", &kstr, NULL},
	    {"--k", &kstr, NULL}, {"--rows", &rows, NULL},
	    {"--help", NULL, &want_help}, {"-h", NULL, &want_help},
	    {NULL, NULL, NULL}};
	const char *pos[3];
	float *vo = NULL, *vn = NULL;
	double *ov = NULL, sum = 0;
	uint32_t no = 0, nn = 0, dold = 0, dnew = 0, k = 10, b, e;
	anc_resp *ro = NULL, *rn = NULL;
	anc_contract_id_str cold, cnew;
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 3, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos < 3)
		return anc_cli_missing(ctx, "contract compare",
		    npos == 0 ? "COLLECTION, OLD and NEW"
		    : npos == 1 ? "OLD and NEW" : "NEW", err);
	if (qold == NULL || qnew == NULL)
		return anc_cli_usage(ctx, err, "contract compare: %s is required "
		    "(see anchorage contract compare --help)",
		    qold == NULL ? "--queries-old F1.fvecs"
		                 : "--queries-new F2.fvecs");
	if (kstr != NULL &&
	    anc_cli_u32_parse(kstr, "-k", 1, 1000, &k, err) != ANC_OK) {
		ctx->usage_error = 1;
		return err->code;
	}
	if ((code = anc_collection_name_check(pos[0], err)) ||
	    (code = rows_opt(rows, &b, &e, err)) ||
	    (code = anc_cli_vectors_read(qold, b, e, &vo, &no, &dold, err)) ||
	    (code = anc_cli_vectors_read(qnew, b, e, &vn, &nn, &dnew, err)))
		goto leave;
	if (no != nn || no == 0) {
		code = anc_error_set(err, ANC_EINVAL, "--queries-old has %u rows, "
		    "--queries-new %u: expected the same queries, at least one",
		    no, nn);
		goto leave;
	}
	if ((ov = calloc(no, sizeof(*ov))) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	if ((code = anc_cli_connect(ctx, err)))
		goto leave;
	cold[0] = cnew[0] = '\0';
	for (uint32_t at = 0; at < no; at += COMPARE_BATCH) {
		uint32_t n = no - at < COMPARE_BATCH ? no - at : COMPARE_BATCH;
		if ((code = anc_client_query(ctx->client, pos[0], pos[1],
		         vo + (size_t)at * dold, n, dold, k, 0, &ro, err))) {
			/* the server's "NAME: " goes in front, once */
			anc_cli_error_strip_name(err);
			anc_error_wrap(err, "OLD %s", pos[1]);
			goto leave;
		}
		if ((code = anc_client_query(ctx->client, pos[0], pos[2],
		         vn + (size_t)at * dnew, n, dnew, k, 0, &rn, err))) {
			/* the server's "NAME: " goes in front, once */
			anc_cli_error_strip_name(err);
			anc_error_wrap(err, "NEW %s", pos[2]);
			goto leave;
		}
		if (ro->u.query.nq != n || rn->u.query.nq != n) {
			code = anc_error_set(err, ANC_EMALFORMED, "query reply: "
			    "expected %u result lists", n);
			goto leave;
		}
		memcpy(cold, ro->u.query.prov.contract, sizeof(cold));
		memcpy(cnew, rn->u.query.prov.contract, sizeof(cnew));
		for (uint32_t i = 0; i < n; i++) {
			ov[at + i] = overlap(&ro->u.query.lists[i],
			    &rn->u.query.lists[i]);
			sum += ov[at + i];
		}
		anc_resp_free(ro);
		anc_resp_free(rn);
		ro = rn = NULL;
	}
	qsort(ov, no, sizeof(*ov), cmp_double);
	double mean = sum / no, p10 = ov[(size_t)floor(0.1 * (no - 1))];
	double mn = ov[0];
	if (ctx->json)
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:o,s:o,s:o,s:i,s:i,s:f,s:f,s:f}", "collection",
		    anc_cli_json_str(pos[0]), "old", anc_cli_json_str(cold),
		    "new", anc_cli_json_str(cnew), "k", (int)k, "queries",
		    (int)no, "mean", mean, "p10", p10, "min", mn), err);
	else
		printf("overlap@%u of %s (old) and %s (new) over %u queries: "
		    "mean %.4f, p10 %.4f, min %.4f\n", k, cold, cnew, no, mean,
		    p10, mn);
leave:
	anc_resp_free(ro);
	anc_resp_free(rn);
	free(vo);
	free(vn);
	free(ov);
	return code;
}

/* ---- dispatch ------------------------------------------------------------------------ */

int
anc_cli_cmd_contract(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub == NULL)
		return anc_cli_usage(ctx, err, "contract: missing SUBCOMMAND "
		    "(see anchorage contract --help)");
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(contract_usage, stdout);
		return ANC_OK;
	}
	if (sub[0] == '-')
		return anc_cli_usage(ctx, err, "contract: unknown option '%s': "
		    "a SUBCOMMAND comes first (see anchorage contract --help)",
		    sub);
	ctx->group = "contract";
	if (strcmp(sub, "register") == 0)
		return cmd_register(ctx, argc - 1, argv + 1, err);
	if (strcmp(sub, "list") == 0)
		return cmd_list(ctx, argc - 1, argv + 1, err);
	if (strcmp(sub, "show") == 0)
		return cmd_show(ctx, argc - 1, argv + 1, err);
	if (strcmp(sub, "promote") == 0)
		return cmd_state(ctx, argc - 1, argv + 1, 1, err);
	if (strcmp(sub, "retire") == 0)
		return cmd_state(ctx, argc - 1, argv + 1, 0, err);
	if (strcmp(sub, "check") == 0)
		return cmd_check(ctx, argc - 1, argv + 1, err);
	if (strcmp(sub, "compare") == 0)
		return cmd_compare(ctx, argc - 1, argv + 1, err);
	return anc_cli_usage(ctx, err, "contract: unknown subcommand '%s', "
	    "expected register, list, show, promote, retire, check or compare "
	    "(see anchorage contract --help)", sub);
}
