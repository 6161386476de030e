/*
 * cli_cmd.c — the small commands of the anchorage CLI: info, ping,
 * collection create, resolve, delete (contract ... is in cli_contract.c).
 *
 * Design note: every command checks what it can locally before it connects
 * (collection names, anchors, the contract file), so a typo is reported
 * with the exact field and nothing reaches the server. Output goes to
 * stdout; the only thing a failing command leaves on stderr is the one
 * error line printed by main (client/anchorage.c). Requests bigger than the
 * protocol's limits (anchors per resolve/delete) are split.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anc_url.h"
#include "cli.h"

/* The client library dials in the background (a server started a moment
 * later is still reached), so a mistyped ipc:// path used to cost the
 * whole --timeout before "TIMEOUT". A command-line user gets the answer at
 * once when there is nothing at the path, or something that is not a
 * socket. */
static int
ipc_path_check(const char *url, anc_error *err)
{
	struct stat sb;
	const char *path = url + strlen("ipc://");

	if (strncmp(url, "ipc://", 6) != 0 || path[0] == '\0')
		return ANC_OK; /* the library names a bad URL */
	if (stat(path, &sb) != 0)
		return anc_error_set(err, ANC_EUNAVAILABLE, "server %s: %s "
		    "(is anchorage-server running with --listen %s?)", url,
		    strerror(errno), url);
	if (!S_ISSOCK(sb.st_mode))
		return anc_error_set(err, ANC_EUNAVAILABLE, "server %s: %s is "
		    "not a socket (is anchorage-server running with --listen "
		    "%s?)", url, path, url);
	return ANC_OK;
}

int
anc_cli_connect(anc_cli_ctx *ctx, anc_error *err)
{
	anc_client_options opt;
	int code;

	if (ctx->client != NULL)
		return ANC_OK;
	/* --server was checked as it was parsed; $ANCHORAGE_SERVER only
	 * now (--help needs no server): malformed, a usage error too */
	if ((code = anc_url_check(ctx->server, 0, "$ANCHORAGE_SERVER", err)) !=
	    ANC_OK) {
		ctx->usage_error = 1;
		return code;
	}
	if ((code = ipc_path_check(ctx->server, err)) != ANC_OK)
		return code;
	anc_client_options_default(&opt);
	opt.timeout_ms = ctx->timeout_ms;
	opt.api_key = ctx->api_key;
	opt.tls_ca_file = ctx->tls_ca;
	opt.dial_now = 1;
	/* the way back to nng's REQ socket for every call (anc_client.h) */
	{
		const char *e = getenv("ANCHORAGE_USE_NNG");
		opt.use_nng = e != NULL && strcmp(e, "1") == 0;
	}
	return anc_client_open(ctx->server, &opt, &ctx->client, err);
}

int
anc_cli_args_help(anc_cli_ctx *ctx, int argc, char **argv,
                  const anc_cli_optspec *specs, const char **pos, int maxpos,
                  int *npos, const char *usage, int *helped, anc_error *err)
{
	const anc_cli_optspec *sp;
	int code;

	*helped = 0;
	if ((code = anc_cli_args_parse(ctx, argc, argv, specs, pos, maxpos,
	         npos, err)))
		return code;
	/* The flag behind --help is the caller's; -h shares it. */
	for (sp = specs; sp->name != NULL; sp++)
		if (strcmp(sp->name, "--help") == 0 && sp->flag != NULL &&
		    *sp->flag) {
			fputs(usage, stdout);
			*helped = 1;
			break;
		}
	return ANC_OK;
}

int
anc_cli_missing(anc_cli_ctx *ctx, const char *name, const char *what,
                anc_error *err)
{
	return anc_cli_usage(ctx, err, "%s: missing %s (see anchorage %s "
	    "--help)", name, what, name);
}

/* Options of a command that has only --help. */
#define HELP_ONLY_SPECS(flag)                                                  \
	{{"--help", NULL, &(flag)}, {"-h", NULL, &(flag)}, {NULL, NULL, NULL}}

/* ---- info / ping --------------------------------------------------------- */

int
anc_cli_cmd_info(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage info\n\n"
	    "Show the server's collections and their contracts (id, "
	    "name@revision, dim,\nmetric, index, state, vectors) and "
	    "passage counts. With --json, one JSON object.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = HELP_ONLY_SPECS(want_help);
	const char *pos[1];
	anc_resp *resp = NULL;
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 0, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if ((code = anc_cli_connect(ctx, err)) ||
	    (code = anc_client_info(ctx->client, &resp, err)))
		return code;
	if (ctx->json)
		code = anc_cli_json_emit(stdout, anc_cli_info_json(&resp->u.info),
		    err);
	else
		anc_cli_info_print(stdout, &resp->u.info);
	anc_resp_free(resp);
	return code;
}

int
anc_cli_cmd_ping(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage ping\n\n"
	    "Check that the server answers; prints its version and the "
	    "round-trip time.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = HELP_ONLY_SPECS(want_help);
	const char *pos[1];
	struct timespec t0, t1;
	anc_resp *resp = NULL;
	double ms;
	json_t *o;
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 0, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if ((code = anc_cli_connect(ctx, err)))
		return code;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((code = anc_client_ping(ctx->client, &resp, err)))
		return code;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (ctx->json) {
		o = json_pack("{s:s,s:o,s:f}", "server", ctx->server, "version",
		    anc_cli_json_str(resp->u.ping.version), "ms", ms);
		code = anc_cli_json_emit(stdout, o, err);
	} else {
		printf("pong from %s: anchorage-server %s (%.2f ms)\n",
		    ctx->server, resp->u.ping.version, ms);
	}
	anc_resp_free(resp);
	return code;
}

/* ---- collection ------------------------------------------------------------ */

int
anc_cli_cmd_collection(anc_cli_ctx *ctx, int argc, char **argv,
                       anc_error *err)
{
	static const char usage[] =
	    "usage: anchorage collection create NAME\n\n"
	    "Create a collection. NAME: 1..128 characters of [A-Za-z0-9_.-], "
	    "starting with a\nletter or digit. Creating an existing collection "
	    "is not an error.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = HELP_ONLY_SPECS(want_help);
	const char *pos[2];
	anc_resp *resp = NULL;
	int npos, helped, code;

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	         usage, &helped, err)) || helped)
		return code;
	if (npos == 0 || strcmp(pos[0], "create") != 0)
		return anc_cli_usage(ctx, err,
		    "collection: expected 'create NAME', got %s%s%s (see "
		    "anchorage collection --help)", npos ? "'" : "nothing",
		    npos ? pos[0] : "", npos ? "'" : "");
	if (npos < 2)
		return anc_cli_usage(ctx, err,
		    "collection create: missing NAME (see anchorage collection "
		    "--help)");
	if ((code = anc_collection_name_check(pos[1], err)) ||
	    (code = anc_cli_connect(ctx, err)) ||
	    (code = anc_client_collection_create(ctx->client, pos[1], &resp,
	         err)))
		return code;
	if (ctx->json)
		code = anc_cli_json_emit(stdout, json_pack("{s:o,s:b}", "name",
		    anc_cli_json_str(pos[1]), "created",
		    resp->u.collection_create.created), err);
	else
		printf(resp->u.collection_create.created
		           ? "created collection %s\n"
		           : "collection %s already exists\n", pos[1]);
	anc_resp_free(resp);
	return code;
}

/* ---- contract: see cli_contract.c ------------------------------------------- */

/* ---- resolve / delete ------------------------------------------------------ */

/* Parse the ANCHOR arguments into a malloc'd array (free()). */
static int
anchors_collect(const char **pos, int n, anc_anchor_str **out,
                anc_error *err)
{
	anc_anchor_str *a;
	uint8_t raw[ANC_ANCHOR_RAW];
	int i, code;

	*out = NULL;
	if ((a = calloc((size_t)n, sizeof(*a))) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "cannot allocate %d anchors", n);
	for (i = 0; i < n; i++) {
		if ((code = anc_anchor_parse(pos[i], raw, err)) != ANC_OK) {
			anc_error_wrap(err, "ANCHOR argument %d", i + 1);
			free(a);
			return code;
		}
		anc_anchor_format(raw, a[i]);
	}
	*out = a;
	return ANC_OK;
}

/* Shared body of resolve and delete. */
static int
anchors_command(anc_cli_ctx *ctx, int argc, char **argv, int is_delete,
                anc_error *err)
{
	static const char delete_usage[] =
	    "usage: anchorage delete COLLECTION ANCHOR...\n\n"
	    "Delete passages by anchor. Per anchor prints deleted "
	    "(with the revision),\nalready deleted or unknown. A deleted "
	    "anchor resolves as \"deleted\" afterwards.\n";
	static const char resolve_usage[] =
	    "usage: anchorage resolve COLLECTION ANCHOR...\n\n"
	    "Per anchor: live (revision, text hash, source, chunk, "
	    "text), deleted (last\nrevision) or unknown. With --json, "
	    "one JSON object per anchor.\n";
	int want_help = 0;
	const anc_cli_optspec specs[] = HELP_ONLY_SPECS(want_help);
	const char **pos = NULL;
	anc_anchor_str *anchors = NULL;
	anc_resp *resp = NULL;
	anc_limits lim;
	uint32_t done, n, i, total;
	int npos, helped, code;

	if ((pos = calloc((size_t)argc + 1, sizeof(*pos))) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "out of memory");
	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, argc, &npos,
	         is_delete ? delete_usage : resolve_usage, &helped, err)) ||
	    helped)
		goto leave;
	if (npos < 2) {
		code = anc_cli_missing(ctx, argv[0],
		    npos ? "ANCHOR" : "COLLECTION and ANCHOR", err);
		goto leave;
	}
	/* a malformed argument is a usage error (exit 2), as for
	 * assemble --pin */
	if ((code = anc_collection_name_check(pos[0], err)) ||
	    (code = anchors_collect(pos + 1, npos - 1, &anchors, err))) {
		ctx->usage_error = code == ANC_EINVAL;
		goto leave;
	}
	if ((code = anc_cli_connect(ctx, err)))
		goto leave;
	anc_limits_default(&lim);
	total = (uint32_t)(npos - 1);
	for (done = 0; done < total; done += n) {
		n = total - done;
		if (n > lim.max_anchors)
			n = lim.max_anchors;
		code = is_delete
		    ? anc_client_delete(ctx->client, pos[0], anchors + done, n,
		          &resp, err)
		    : anc_client_resolve(ctx->client, pos[0], anchors + done, n,
		          &resp, err);
		if (code != ANC_OK)
			goto leave;
		if ((is_delete ? resp->u.del.n : resp->u.resolve.n) != n) {
			code = anc_error_set(err, ANC_EMALFORMED,
			    "%s reply: expected %u results, got %u", argv[0], n,
			    is_delete ? resp->u.del.n : resp->u.resolve.n);
			goto leave;
		}
		for (i = 0; i < n && code == ANC_OK; i++) {
			if (is_delete && ctx->json)
				code = anc_cli_json_emit(stdout,
				    anc_cli_deleted_json(&resp->u.del.results[i]),
				    err);
			else if (is_delete)
				anc_cli_deleted_print(stdout,
				    &resp->u.del.results[i]);
			else if (ctx->json)
				code = anc_cli_json_emit(stdout,
				    anc_cli_resolved_json(
				        &resp->u.resolve.results[i]), err);
			else
				anc_cli_resolved_print(stdout,
				    &resp->u.resolve.results[i]);
		}
		anc_resp_free(resp);
		resp = NULL;
		if (code != ANC_OK)
			goto leave;
	}
leave:
	anc_resp_free(resp);
	free(anchors);
	free(pos);
	return code;
}

int
anc_cli_cmd_resolve(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	return anchors_command(ctx, argc, argv, 0, err);
}

int
anc_cli_cmd_delete(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	return anchors_command(ctx, argc, argv, 1, err);
}
