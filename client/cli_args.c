/*
 * cli_args.c — option values of the anchorage CLI and its one-line error
 * report.
 *
 * Design note: numbers are parsed with strtoull plus explicit checks (no
 * sign, no trailing garbage, range named in the message) because atoi
 * turns "--batch 1O0" into 1 and "-k -5" into a huge unsigned value.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int
anc_cli_u32_parse(const char *s, const char *what, uint32_t min, uint32_t max,
                  uint32_t *out, anc_error *err)
{
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		goto bad;
	*out = (uint32_t)v;
	return ANC_OK;
bad:
	return anc_error_set(err, ANC_EINVAL,
	    "%s: expected an integer %u..%u, got '%s'", what, min, max,
	    s ? s : "(nothing)");
}

int
anc_cli_rows_parse(const char *s, uint32_t *begin, uint32_t *end,
                   anc_error *err)
{
	unsigned long long a, b;
	char *p;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		goto bad;
	errno = 0;
	a = strtoull(s, &p, 10);
	if (errno != 0 || a >= UINT32_MAX - 1)
		goto bad;
	if (*p == '\0') {
		b = a;
	} else {
		if (*p != '-' || !isdigit((unsigned char)p[1]))
			goto bad;
		b = strtoull(p + 1, &p, 10);
		if (errno != 0 || *p != '\0' || b >= UINT32_MAX - 1)
			goto bad;
		if (b < a)
			return anc_error_set(err, ANC_EINVAL,
			    "--rows: expected A-B with A <= B, got '%s'", s);
	}
	*begin = (uint32_t)a;
	*end = (uint32_t)b + 1;
	return ANC_OK;
bad:
	return anc_error_set(err, ANC_EINVAL,
	    "--rows: expected A-B (inclusive, 0-based) or A, got '%s'",
	    s ? s : "(nothing)");
}

int
anc_cli_vector_parse(const char *json, const char *what, float **out,
                     uint32_t *dim, anc_error *err)
{
	json_error_t jerr;
	json_t *root;
	json_t *e;
	float *vec = NULL;
	size_t n, i;
	double x;
	int code = ANC_OK;

	*out = NULL;
	*dim = 0;
	root = json_loads(json, 0, &jerr);
	if (root == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: not a JSON array of numbers: column %d: %s", what,
		    jerr.column, jerr.text);
	if (!json_is_array(root) || (n = json_array_size(root)) == 0 ||
	    n > ANC_DIM_MAX) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: expected a JSON array of 1..%d numbers", what,
		    ANC_DIM_MAX);
		goto leave;
	}
	if ((vec = malloc(n * sizeof(float))) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot allocate %zu floats", what, n);
		goto leave;
	}
	json_array_foreach(root, i, e) {
		if (!json_is_number(e)) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s[%zu]: expected number, got a non-number", what,
			    i);
			goto leave;
		}
		x = json_number_value(e);
		vec[i] = (float)x;
		if (!isfinite(vec[i])) {
			code = anc_error_set(err, ANC_ENONFINITE,
			    "%s[%zu]: %g is not a finite float32", what, i, x);
			goto leave;
		}
	}
	*out = vec;
	*dim = (uint32_t)n;
	vec = NULL;
leave:
	free(vec);
	json_decref(root);
	return code;
}

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes, so
 * that trimming always advances). */
static size_t
utf8_seqlen(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	if (c >= 0xe0)
		return c <= 0xef ? 3 : 1;
	if (c >= 0xc2)
		return 2;
	return 1;
}

void
anc_cli_text_oneline(const char *text, size_t max, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t o = 0;
	size_t sl, j;
	int space = 0;
	int cut = 0;

	if (outsz == 0)
		return;
	if (max + 4 > outsz)
		max = outsz > 4 ? outsz - 4 : 0;
	if (text == NULL) {
		out[0] = '\0';
		return;
	}
	while (*p != '\0') {
		/* control characters (C0, DEL, C1) as white space; p[1]
		 * is readable: at worst the terminating NUL */
		sl = anc_text_control(p, 2);
		if (*p == ' ' || sl != 0) {
			space = o > 0;
			p += sl != 0 ? sl : 1;
			continue;
		}
		sl = utf8_seqlen(*p);
		for (j = 1; j < sl; j++)
			if (p[j] == '\0')
				sl = j; /* truncated sequence at the end */
		if (o + (size_t)space + sl > max) {
			cut = 1;
			break;
		}
		if (space)
			out[o++] = ' ';
		space = 0;
		memcpy(out + o, p, sl);
		o += sl;
		p += sl;
	}
	if (cut) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

void
anc_cli_error_strip_name(anc_error *err)
{
	const char *name;
	size_t nl;

	if (err == NULL)
		return;
	name = anc_errname(err->code);
	nl = strlen(name);
	if (strncmp(err->msg, name, nl) == 0 && err->msg[nl] == ':' &&
	    err->msg[nl + 1] == ' ')
		memmove(err->msg, err->msg + nl + 2,
		    strlen(err->msg + nl + 2) + 1);
}

void
anc_cli_error_print(FILE *fp, const anc_error *err)
{
	const char *name;
	const char *msg;
	size_t nl;

	name = anc_errname(err->code);
	msg = err->msg[0] ? err->msg : anc_strerror(err->code);
	nl = strlen(name);
	if (strncmp(msg, name, nl) == 0 && msg[nl] == ':' && msg[nl + 1] == ' ')
		msg += nl + 2;
	fprintf(fp, "anchorage: error: %s: %s\n", name, msg);
}

/* Is a (up to a '=') one of anchorage's global options? */
static int
global_opt(const char *a)
{
	static const char *const g[] = {"--json", "--server", "--api-key",
	                                "--tls-ca", "--timeout"};
	size_t n = strcspn(a, "=");
	for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
		if (strlen(g[i]) == n && strncmp(a, g[i], n) == 0)
			return 1;
	return 0;
}

uint32_t
anc_cli_args_all(int argc, char **argv, const anc_cli_optspec *specs,
                 const char *name, const char **out)
{
	size_t nl = strlen(name);
	uint32_t n = 0;

	for (int a = 1; a < argc && strcmp(argv[a], "--") != 0; a++) {
		if (strcmp(argv[a], name) == 0) {
			if (a + 1 < argc)
				out[n++] = argv[++a];
			continue;
		}
		if (strncmp(argv[a], name, nl) == 0 && argv[a][nl] == '=') {
			out[n++] = argv[a] + nl + 1;
			continue;
		}
		for (const anc_cli_optspec *sp = specs; sp->name != NULL; sp++)
			if (sp->value != NULL && strcmp(argv[a], sp->name) == 0) {
				a++; /* its value */
				break;
			}
	}
	return n;
}

int
anc_cli_args_parse(anc_cli_ctx *ctx, int argc, char **argv,
                   const anc_cli_optspec *specs, const char **pos, int maxpos,
                   int *npos, anc_error *err)
{
	const anc_cli_optspec *sp;
	const char *a;
	size_t n;
	int only_pos = 0;
	int i;

	/* "contract list", not "list": the command as the user typed it */
	char cmd[96];
	snprintf(cmd, sizeof cmd, "%s%s%s", ctx->group ? ctx->group : "",
	         ctx->group ? " " : "", argv[0]);
	*npos = 0;
	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (*npos >= maxpos)
				return anc_cli_usage(ctx, err,
				    "%s: unexpected argument '%s' (see anchorage "
				    "%s --help)", cmd, a, cmd);
			pos[(*npos)++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		for (sp = specs; sp->name != NULL; sp++) {
			n = strlen(sp->name);
			if (strncmp(a, sp->name, n) == 0 &&
			    (a[n] == '\0' || (a[n] == '=' && sp->value)))
				break;
		}
		/* `anchorage drift docs --json` is how people type it; a
		 * flag changes nothing already done. The valued global
		 * options stay before the command: after it they would
		 * shadow a command's own option of that name one day. */
		if (sp->name == NULL && strcmp(a, "--json") == 0) { /* not =x */
			ctx->json = 1;
			continue;
		}
		if (sp->name == NULL && global_opt(a)) {
			/* The hint is a command line that works: the option
			 * with its value (not an API key: that stays out of
			 * terminals' scrollback and logs). */
			size_t on = strcspn(a, "=");
			const char *v = a[on] == '=' ? a + on + 1 :
			    i + 1 < argc ? argv[i + 1] : "VALUE";
			if (strncmp(a, "--api-key", on) == 0)
				v = "KEY";
			return anc_cli_usage(ctx, err,
			    "%s: '%.*s' is a global option: put it before the "
			    "command (anchorage %.*s %s %s ...)", cmd, (int)on,
			    a, (int)on, a, v, cmd);
		}
		if (sp->name == NULL)
			return anc_cli_usage(ctx, err,
			    "%s: unknown option '%s' (see anchorage %s --help)",
			    cmd, a, cmd);
		if (sp->value == NULL) {
			*sp->flag = 1;
		} else if (a[n] == '=') {
			*sp->value = a + n + 1;
		} else if (i + 1 < argc) {
			*sp->value = argv[++i];
		} else {
			return anc_cli_usage(ctx, err, "%s: %s: missing value",
			    cmd, sp->name);
		}
	}
	return ANC_OK;
}

int
anc_cli_usage(anc_cli_ctx *ctx, anc_error *err, const char *fmt, ...)
{
	va_list ap;
	char msg[ANC_ERRMSG_MAX];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->usage_error = 1;
	return anc_error_set(err, ANC_EINVAL, "%s", msg);
}
