/*
 * anc_error.c — the error table. Names are wire-stable (PROTOCOL.md); the
 * table is indexed by code, so a code and its name can never drift apart.
 */
#include "anc_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	const char *text;
} errtab[ANC_ECODE_MAX] = {
	[ANC_OK] = {"OK", "no error"},
	[ANC_EINVAL] = {"INVALID_ARGUMENT", "invalid argument"},
	[ANC_EMALFORMED] = {"MALFORMED", "malformed input"},
	[ANC_ETOOBIG] = {"TOO_LARGE", "size or count over a limit"},
	[ANC_ENOCOLL] = {"UNKNOWN_COLLECTION", "unknown collection"},
	[ANC_ENOCONTRACT] = {"UNKNOWN_CONTRACT", "unknown contract"},
	[ANC_EDIM] = {"DIMENSION_MISMATCH", "vector dimension mismatch"},
	[ANC_ENONFINITE] = {"NON_FINITE", "vector holds NaN or Inf"},
	[ANC_EVIOLATION] = {"CONTRACT_VIOLATION", "vector breaks its contract"},
	[ANC_EEXIST] = {"ALREADY_EXISTS", "already exists"},
	[ANC_ECONFLICT] = {"CONFLICT", "exists with other content"},
	[ANC_ENOTFOUND] = {"NOT_FOUND", "not found"},
	[ANC_EUNSUPPORTED] = {"UNSUPPORTED", "unsupported operation or version"},
	[ANC_ENOMEM] = {"OUT_OF_MEMORY", "out of memory"},
	[ANC_ESTORAGE] = {"STORAGE", "storage failure"},
	[ANC_EINDEX] = {"INDEX", "index failure"},
	[ANC_ETRANSPORT] = {"TRANSPORT", "transport failure"},
	[ANC_ETIMEOUT] = {"TIMEOUT", "timed out"},
	[ANC_EIO] = {"IO", "I/O failure"},
	[ANC_EINTERNAL] = {"INTERNAL", "internal error"},
	[ANC_EUNAVAILABLE] = {"UNAVAILABLE", "service unavailable"},
	[ANC_ERETIRED] = {"CONTRACT_RETIRED", "contract retired"},
	[ANC_EPRECONDITION] = {"FAILED_PRECONDITION",
	                       "operation not allowed in the current state"},
	[ANC_EUNAUTHENTICATED] = {"UNAUTHENTICATED",
	                          "missing or invalid API key"},
	[ANC_EPERMISSION] = {"PERMISSION_DENIED",
	                     "the API key's role does not allow it"},
	[ANC_ETAMPERED] = {"TAMPERED",
	                   "stored record fails its authentication check"},
};

const char *
anc_strerror(int code)
{
	if (code < 0 || code >= ANC_ECODE_MAX)
		return "unknown error";
	return errtab[code].text;
}

const char *
anc_errname(int code)
{
	if (code < 0 || code >= ANC_ECODE_MAX)
		return "UNKNOWN";
	return errtab[code].name;
}

int
anc_errcode(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < ANC_ECODE_MAX; i++)
		if (strcmp(errtab[i].name, name) == 0)
			return i;
	return -1;
}

static void
flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int
anc_error_set(anc_error *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	flatten(err->msg);
	return code;
}

void
anc_error_wrap(anc_error *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char prefix[ANC_ERRMSG_MAX];
	char old[ANC_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* Truncation keeps the prefix, which names the context; fine. */
	int n = snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	if (n < 0)
		err->msg[0] = '\0';
	flatten(err->msg);
}

void
anc_error_clear(anc_error *err)
{
	if (err == NULL)
		return;
	err->code = ANC_OK;
	err->msg[0] = '\0';
}
