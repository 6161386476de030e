/*
 * anc_error.h — Anchorage's one error enum and the error value that carries
 * its cause.
 *
 * Every function of every component returns an `int` status: 0 (ANC_OK) or
 * one of the codes below. Functions that can fail for a reason worth telling
 * a user also take an `anc_error *err` (may be NULL) and, on failure, fill it
 * with the code and a one-line message naming the bad field, the expected
 * and the received value ("collection 'docs': contract 3f9a...: expected dim
 * 384, got 4096"). There is no global "last error".
 *
 * The numeric codes and their names are part of the wire protocol
 * (proto/PROTOCOL.md): they never change meaning and are never reused.
 * Causes from LMDB, nng, faiss and the C library are translated at the module
 * boundary into one of these codes, with the library's own message copied
 * into anc_error.msg.
 *
 * Thread safety: everything here is reentrant; an anc_error belongs to the
 * caller.
 */
#ifndef ANC_ERROR_H
#define ANC_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
	ANC_OK = 0,
	ANC_EINVAL = 1,        /* INVALID_ARGUMENT: a field has a bad value */
	ANC_EMALFORMED = 2,    /* MALFORMED: undecodable message or file */
	ANC_ETOOBIG = 3,       /* TOO_LARGE: size or count over a limit */
	ANC_ENOCOLL = 4,       /* UNKNOWN_COLLECTION */
	ANC_ENOCONTRACT = 5,   /* UNKNOWN_CONTRACT */
	ANC_EDIM = 6,          /* DIMENSION_MISMATCH */
	ANC_ENONFINITE = 7,    /* NON_FINITE: NaN or Inf in a vector */
	ANC_EVIOLATION = 8,    /* CONTRACT_VIOLATION: e.g. norm off */
	ANC_EEXIST = 9,        /* ALREADY_EXISTS */
	ANC_ECONFLICT = 10,    /* CONFLICT: exists with other content */
	ANC_ENOTFOUND = 11,    /* NOT_FOUND */
	ANC_EUNSUPPORTED = 12, /* UNSUPPORTED: unknown op or version */
	ANC_ENOMEM = 13,       /* OUT_OF_MEMORY */
	ANC_ESTORAGE = 14,     /* STORAGE: LMDB failure */
	ANC_EINDEX = 15,       /* INDEX: faiss failure */
	ANC_ETRANSPORT = 16,   /* TRANSPORT: nng failure */
	ANC_ETIMEOUT = 17,     /* TIMEOUT */
	ANC_EIO = 18,          /* IO: file system failure */
	ANC_EINTERNAL = 19,    /* INTERNAL: a bug; please report */
	ANC_EUNAVAILABLE = 20, /* UNAVAILABLE: shutting down / not ready */
	ANC_ERETIRED = 21,     /* CONTRACT_RETIRED: the contract was retired */
	ANC_EPRECONDITION = 22, /* FAILED_PRECONDITION: state forbids it now */
	ANC_EUNAUTHENTICATED = 23, /* UNAUTHENTICATED: missing or bad key */
	ANC_EPERMISSION = 24,  /* PERMISSION_DENIED: the key's role is too weak */
	ANC_ETAMPERED = 25,    /* TAMPERED: a stored record fails its HMAC
	                          (a retrieval receipt was altered) */
	ANC_ECODE_MAX = 26
} anc_code;

#define ANC_ERRMSG_MAX 512

typedef struct anc_error {
	int  code;               /* anc_code; 0 when no error */
	char msg[ANC_ERRMSG_MAX]; /* one line, NUL-terminated, no newline */
} anc_error;

/* Human-readable description of a code ("dimension mismatch"). Never NULL. */
const char *anc_strerror(int code);

/* Stable upper-case name of a code ("DIMENSION_MISMATCH"), as sent on the
 * wire. Unknown codes give "UNKNOWN". Never NULL. */
const char *anc_errname(int code);

/* Code for a name as returned by anc_errname, or -1 if unknown. */
int anc_errcode(const char *name);

/* Fill *err (if not NULL) with code and a printf-style message, and return
 * code, so that error paths read `return anc_error_set(err, ANC_EDIM, ...)`.
 * The message is truncated to fit; newlines are replaced by spaces. */
int anc_error_set(anc_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix the message already in *err with "prefix: " (printf-style). Keeps
 * the code. Returns nothing: err may be NULL, so the caller returns the
 * code it already holds, never one read back from err. */
void anc_error_wrap(anc_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reset *err to no error. */
void anc_error_clear(anc_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ANC_ERROR_H */
