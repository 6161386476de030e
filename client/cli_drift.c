/*
 * cli_drift.c — `anchorage drift COLLECTION [--contract ID] [--fresh]
 * [--json]`: the drift report of a contract (anc_types.h documents every
 * statistic). Exit status 0 whatever the verdict: the verdict is data, not
 * a failure of the command; scripts read "status" from --json.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_drift.h"

static const char drift_usage[] =
    "usage: anchorage drift COLLECTION [--contract ID|NAME@REV] [--fresh]\n"
    "                       [--set KEY=VALUE,...]\n\n"
    "Drift report of a contract (default: the collection's default "
    "contract):\nthe verdict (ok, warn, drift, insufficient_data) and each "
    "statistic with\nits value, threshold and whether it fired. --fresh "
    "makes the server compute\na new report now instead of returning its "
    "latest one. With --json, one\nJSON object.\n\n"
    "--set changes the contract's drift configuration first (an admin key "
    "on\nservers with keys); the server records it and keeps it across "
    "restarts, and\nthe report printed is computed afresh under it.\nKeys: window, reservoir, write_window, bootstrap, quantile,"
    "\ncomponent_threshold, component_share, permutations, p_value, auc, "
    "folds,\nepochs, score_quantile, score_share, min_window, "
    "min_reference.\nExample: --set window=512,permutations=200,"
    "p_value=0.01\n";

static const char *const fires_when[ANC_DRIFT_NSTATS] = {
	"above", "above", "below", "above", "above"};

/* JSON has no infinity: null stands for a value that is not finite. */
static json_t *
jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *
anc_cli_drift_json(const anc_drift_report *r)
{
	json_t *o = json_object(), *st = json_object();
	if (o == NULL || st == NULL) {
		json_decref(o);
		json_decref(st);
		return NULL;
	}
	json_object_set_new(o, "collection", anc_cli_json_str(r->collection));
	json_object_set_new(o, "contract", anc_cli_json_str(r->contract));
	json_object_set_new(o, "status",
	                    json_string(anc_drift_status_name(r->status)));
	json_object_set_new(o, "nfired", json_integer(r->nfired));
	json_object_set_new(o, "time", json_real(r->time));
	json_object_set_new(o, "compute_seconds", json_real(r->compute_seconds));
	json_object_set_new(o, "reference_count",
	                    json_integer((json_int_t)r->reference_count));
	json_object_set_new(o, "reference_sample",
	                    json_integer(r->reference_sample));
	json_object_set_new(o, "reference_scores",
	                    json_integer(r->reference_scores));
	json_object_set_new(o, "window", json_integer(r->window));
	json_object_set_new(o, "window_flagged", json_integer(r->window_flagged));
	if (r->window_size > 0)
		json_object_set_new(o, "window_size",
		                    json_integer(r->window_size));
	json_object_set_new(o, "queries_seen",
	                    json_integer((json_int_t)r->queries_seen));
	json_object_set_new(o, "queries_flagged",
	                    json_integer((json_int_t)r->queries_flagged));
	json_object_set_new(o, "writes_seen",
	                    json_integer((json_int_t)r->writes_seen));
	json_object_set_new(o, "write_centroid_distance",
	                    r->write_centroid_distance < 0
	                        ? json_null()
	                        : jnum(r->write_centroid_distance));
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		const anc_drift_stat *s = &r->stats[i];
		json_t *x = json_object();
		if (x == NULL)
			continue;
		json_object_set_new(x, "value",
		                    s->computed ? jnum(s->value) : json_null());
		json_object_set_new(x, "threshold", s->computed
		                                        ? jnum(s->threshold)
		                                        : json_null());
		json_object_set_new(x, "detail", jnum(s->detail));
		json_object_set_new(x, "fired", json_boolean(s->fired));
		json_object_set_new(x, "computed", json_boolean(s->computed));
		json_object_set_new(x, "fires_when", json_string(fires_when[i]));
		json_object_set_new(st, anc_drift_stat_name(i), x);
	}
	json_object_set_new(o, "stats", st);
	return o;
}

void
anc_cli_drift_print(FILE *fp, const anc_drift_report *r)
{
	char when[64] = "";
	time_t t = (time_t)r->time;
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(fp, "%s / %s: %s (%u of %d statistics fired) at %s\n",
	        r->collection, r->contract, anc_drift_status_name(r->status),
	        r->nfired, ANC_DRIFT_NSTATS, when);
	char size[32] = "";
	if (r->window_size > 0)
		snprintf(size, sizeof size, " of %u", r->window_size);
	fprintf(fp, "  reference %llu vectors (sample %u, %u top-1 scores); "
	        "window %u%s queries, %u flagged; %llu queries seen\n",
	        (unsigned long long)r->reference_count, r->reference_sample,
	        r->reference_scores, r->window, size, r->window_flagged,
	        (unsigned long long)r->queries_seen);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		const anc_drift_stat *s = &r->stats[i];
		if (!s->computed) {
			fprintf(fp, "  %-20s  n/a (not enough data)\n",
			        anc_drift_stat_name(i));
			continue;
		}
		fprintf(fp, "  %-20s %10.4g  threshold %-10.4g (fires %s)  %s\n",
		        anc_drift_stat_name(i), s->value, s->threshold,
		        fires_when[i], s->fired ? "FIRED" : "ok");
	}
}

int
anc_cli_cmd_drift(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *contract = NULL, *set = NULL;
	int want_help = 0, fresh = 0, npos, helped, code;
	const anc_cli_optspec specs[] = {
		{"--contract", &contract, NULL}, {"--fresh", NULL, &fresh},
		{"--set", &set, NULL},
		{"--help", NULL, &want_help}, {"-h", NULL, &want_help},
		{NULL, NULL, NULL}};
	const char *pos[1];
	anc_resp *resp = NULL;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 1, &npos,
	         drift_usage, &helped, err)) || helped)
		return code;
	if (npos < 1)
		return anc_cli_missing(ctx, "drift", "COLLECTION", err);
	if ((code = anc_collection_name_check(pos[0], err)))
		return code;
	if (set != NULL) {
		/* the syntax here, before a round trip */
		anc_drift_config probe;
		memset(&probe, 0, sizeof probe);
		if ((code = anc_drift_config_apply(&probe, set, err))) {
			char why[ANC_ERRMSG_MAX];
			snprintf(why, sizeof why, "%s", err->msg);
			/* "drift set: ..." from the parser: name the flag */
			return anc_cli_usage(ctx, err, "--set: %s",
			    strncmp(why, "drift set: ", 11) == 0 ? why + 11 : why);
		}
	}
	if ((code = anc_cli_connect(ctx, err)))
		return code;
	if (set != NULL) {
		anc_req req;
		memset(&req, 0, sizeof req);
		req.op = ANC_OP_DRIFT;
		req.u.drift.collection = pos[0];
		req.u.drift.contract = contract != NULL ? contract : "";
		req.u.drift.fresh = fresh;
		req.u.drift.set = set;
		code = anc_client_call(ctx->client, &req, &resp, err);
	} else {
		code = anc_client_drift(ctx->client, pos[0], contract, fresh,
		                        &resp, err);
	}
	if (code)
		return code;
	if (ctx->json)
		code = anc_cli_json_emit(stdout, anc_cli_drift_json(&resp->u.drift),
		    err);
	else
		anc_cli_drift_print(stdout, &resp->u.drift);
	anc_resp_free(resp);
	return code;
}
