/*
 * anchorage.c — the `anchorage` command-line client: global options and
 * dispatch. The commands live in client/cli_*.c (see client/cli.h).
 *
 * Contract with scripts: exit status 0 on success, 1 when the command
 * failed, 2 for a command-line (usage) error; on failure stderr holds
 * exactly one line, "anchorage: error: NAME: message", where NAME is the
 * stable error name of anc_errname(). Results go to stdout only.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_url.h"
#include "cli.h"
#include "cli_drift.h"
#include "cli_ground.h"

#define DEFAULT_SERVER "tcp://127.0.0.1:7700"

static const char main_usage[] =
    "usage: anchorage [--server URL] [--json] [--timeout MS] [--api-key KEY]\n"
    "                 [--tls-ca FILE] COMMAND [ARGS]\n"
    "\n"
    "Client for anchorage-server, the retrieval-grounding vector store.\n"
    "\n"
    "Global options (before the command):\n"
    "  --server URL   tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc://PATH\n"
    "                 (default: $ANCHORAGE_SERVER, else " DEFAULT_SERVER ");\n"
    "                 nothing listening there on this machine is an error\n"
    "                 at once, a remote host is waited for --timeout\n"
    "  --json         machine-readable output (one JSON value per line)\n"
    "  --timeout MS   per-request timeout in milliseconds (default 30000)\n"    "  --api-key KEY  API key sent with every request (default:\n"
    "                 $ANCHORAGE_API_KEY; prefer the variable: arguments are\n"
    "                 visible to other users in ps)\n"
    "  --tls-ca FILE  CA certificate(s) that a tls+tcp:// server's\n"
    "                 certificate must chain to (default: $ANCHORAGE_TLS_CA)\n"
    "  --help         this help;  --version  print the version\n"
    "\n"
    "Commands (each has --help):\n"
    "  info                                 collections, contracts, counts\n"
    "  ping                                 check that the server answers\n"
    "  collection create NAME               create a collection\n"
    "  contract register COLLECTION FILE    register an embedding contract\n"
    "  contract list|show|promote|retire|check|compare ...\n"
    "                                       contract versions and migration\n"
    "  load COLLECTION FILE.jsonl|- [...]   bulk upsert passages (pipelined,\n"
    "                                       resumable with --checkpoint)\n"
    "  query COLLECTION (--vector|--vectors) [...]   search\n"
    "  resolve COLLECTION ANCHOR...         what became of pinned anchors\n"
    "  delete COLLECTION ANCHOR...          delete passages\n"
    "  drift COLLECTION [--contract ID]     drift report of a contract\n"
    "  assemble COLLECTION --budget N [...] prompt context from pins + hits\n"
    "  verify COLLECTION --claims FILE [...]  check claims against the\n"
    "                                       passages they cite\n"
    "  receipt show|replay ID               a stored retrieval receipt\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error; on failure one line\n"
    "\"anchorage: error: NAME: message\" on stderr.\n";

static const struct {
	const char *name;
	anc_cli_cmd_fn fn;
} commands[] = {
	{"info", anc_cli_cmd_info},
	{"ping", anc_cli_cmd_ping},
	{"collection", anc_cli_cmd_collection},
	{"contract", anc_cli_cmd_contract},
	{"load", anc_cli_cmd_load},
	{"query", anc_cli_cmd_query},
	{"resolve", anc_cli_cmd_resolve},
	{"delete", anc_cli_cmd_delete},
	{"drift", anc_cli_cmd_drift},
	{"assemble", anc_cli_cmd_assemble},
	{"verify", anc_cli_cmd_verify},
	{"receipt", anc_cli_cmd_receipt},
};

/* Does argv[*i] name the valued option `name` ("--name V" or "--name=V")?
 * If so, *val is its value (NULL when missing) and *i moves past it. */
static int
valued_opt(const char *name, int argc, char **argv, int *i,
           const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
		return 0;
	if (a[n] == '=')
		*val = a + n + 1;
	else
		*val = *i + 1 < argc ? argv[++*i] : NULL;
	return 1;
}

/* Global options; *cmd_index is where the command starts. */
static int
parse_globals(anc_cli_ctx *ctx, int argc, char **argv, int *cmd_index,
              int *want_help, int *want_version, anc_error *err)
{
	static const struct {
		const char *name, *expect;
		size_t field; /* offset of the const char * in ctx */
	} strs[] = {
		{"--server", "a URL (tcp://HOST:PORT or ipc://PATH)",
		 offsetof(anc_cli_ctx, server)},
		{"--api-key", "a key", offsetof(anc_cli_ctx, api_key)},
		{"--tls-ca", "a file", offsetof(anc_cli_ctx, tls_ca)},
	};
	const char *a;
	const char *val;
	uint32_t ms;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		a = argv[i];
		val = NULL;
		size_t k;
		for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			if (valued_opt(strs[k].name, argc, argv, &i, &val))
				break;
		if (k < sizeof(strs) / sizeof(strs[0])) {
			if (val == NULL || val[0] == '\0')
				return anc_cli_usage(ctx, err, "%s: expected %s",
				    strs[k].name, strs[k].expect);
			/* a malformed URL is a usage error (exit 2), as
			 * any other malformed argument */
			if (k == 0 && anc_url_check(val, 0, "--server", err) !=
			    ANC_OK) {
				ctx->usage_error = 1;
				return err->code;
			}
			*(const char **)((char *)ctx + strs[k].field) = val;
		} else if (strcmp(a, "--json") == 0) {
			ctx->json = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*want_help = 1;
		} else if (strcmp(a, "--version") == 0) {
			*want_version = 1;
		} else if (valued_opt("--timeout", argc, argv, &i, &val)) {
			if (anc_cli_u32_parse(val, "--timeout", 1, 86400000, &ms,
			        err) != ANC_OK) {
				ctx->usage_error = 1;
				return err->code;
			}
			ctx->timeout_ms = (int)ms;
		} else {
			return anc_cli_usage(ctx, err,
			    "unknown global option '%s' (see anchorage --help)",
			    a);
		}
	}
	*cmd_index = i;
	return ANC_OK;
}

int
main(int argc, char **argv)
{
	anc_cli_ctx ctx;
	anc_error err;
	const char *env;
	size_t c;
	int cmd = 0, want_help = 0, want_version = 0;
	int code;

	memset(&ctx, 0, sizeof(ctx));
	anc_error_clear(&err);
	env = getenv("ANCHORAGE_SERVER");
	ctx.server = env != NULL && env[0] != '\0' ? env : DEFAULT_SERVER;
	ctx.timeout_ms = 30000;
	env = getenv("ANCHORAGE_API_KEY");
	ctx.api_key = env != NULL && env[0] != '\0' ? env : NULL;
	env = getenv("ANCHORAGE_TLS_CA");
	ctx.tls_ca = env != NULL && env[0] != '\0' ? env : NULL;

	if ((code = parse_globals(&ctx, argc, argv, &cmd, &want_help,
	         &want_version, &err)) != ANC_OK)
		goto leave;
	if (want_version) {
		printf("anchorage %s\n", ANCHORAGE_VERSION);
		goto leave;
	}
	if (want_help || cmd >= argc) {
		if (want_help)
			fputs(main_usage, stdout);
		else
			code = anc_cli_usage(&ctx, &err,
			    "missing COMMAND (see anchorage --help)");
		goto leave;
	}
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (strcmp(argv[cmd], commands[c].name) == 0)
			break;
	if (c == sizeof(commands) / sizeof(commands[0])) {
		code = anc_cli_usage(&ctx, &err,
		    "unknown command '%s' (see anchorage --help)", argv[cmd]);
		goto leave;
	}
	code = commands[c].fn(&ctx, argc - cmd, argv + cmd, &err);
leave:
	anc_client_close(ctx.client);
	if (fflush(stdout) != 0 && code == ANC_OK)
		code = anc_error_set(&err, ANC_EIO, "cannot write to stdout");
	if (code != ANC_OK) {
		if (err.code == 0)
			anc_error_set(&err, code, "%s", anc_strerror(code));
		anc_cli_error_print(stderr, &err);
		return ctx.usage_error ? 2 : 1;
	}
	return 0;
}
