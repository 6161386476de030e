/*
 * srv_config.c — the server's JSON configuration file, and the loopback
 * test that decides whether a server without keys may listen on a URL.
 *
 * The file holds what does not belong on a command line: API key hashes,
 * TLS files, limits. It is parsed strictly: an unknown key is an error that
 * names it, so a typo ("max_mesage") cannot silently leave a default in
 * place.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include <jansson.h>

#include "srv_server.h"

/* Strings from the file are copied into one block that outlives the
 * json_t tree; cfg points into it. */
typedef struct strpool {
	char *buf;
	size_t len, cap;
} strpool;

static const char *
pool_dup(strpool *p, const char *s, anc_error *err)
{
	size_t n = strlen(s) + 1;
	(void)err;
	if (p->len + n > p->cap)
		return NULL; /* sized up front: cannot happen */
	char *d = p->buf + p->len;
	memcpy(d, s, n);
	p->len += n;
	return d;
}

static int
unknown_keys(json_t *obj, const char *where, const char *const *known,
             anc_error *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int ok = 0;
		char list[256];
		size_t n = 0;
		for (size_t i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				ok = 1;
		if (ok)
			continue;
		list[0] = '\0';
		for (size_t i = 0; known[i] != NULL && n < sizeof list; i++)
			n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
			                      i ? ", " : "", known[i]);
		return anc_error_set(err, ANC_EINVAL,
		    "%s: unknown key '%s' (expected one of: %s)", where, k,
		    list);
	}
	return ANC_OK;
}

static int
get_str(json_t *obj, const char *where, const char *key, int required,
        strpool *pool, const char **out, anc_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL) {
		if (required)
			return anc_error_set(err, ANC_EINVAL,
			    "%s.%s: required", where, key);
		return ANC_OK;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
		return anc_error_set(err, ANC_EINVAL,
		    "%s.%s: expected a non-empty string", where, key);
	*out = pool_dup(pool, json_string_value(v), err);
	return ANC_OK;
}

static int
get_u32(json_t *obj, const char *where, const char *key, uint32_t lo,
        uint32_t hi, uint32_t *out, anc_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return ANC_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return anc_error_set(err, ANC_EINVAL,
		    "%s.%s: expected an integer in %u..%u", where, key, lo, hi);
	*out = (uint32_t)json_integer_value(v);
	return ANC_OK;
}

static int
load_limits(json_t *l, anc_server_config *cfg, anc_error *err)
{
	static const char *const known[] = {"max_message", "max_records",
	    "max_queries", "max_k", "max_text", "max_meta", "max_anchors",
	    "max_connections", "send_timeout_ms", NULL};
	uint32_t to = (uint32_t)cfg->send_timeout_ms;
	int rv;
	if (!json_is_object(l))
		return anc_error_set(err, ANC_EINVAL,
		                     "limits: expected an object");
	if ((rv = unknown_keys(l, "limits", known, err)) ||
	    (rv = get_u32(l, "limits", "max_message", 1024, UINT32_MAX,
	                  &cfg->limits.max_message, err)) ||
	    (rv = get_u32(l, "limits", "max_records", 1, 1000000,
	                  &cfg->limits.max_records, err)) ||
	    (rv = get_u32(l, "limits", "max_queries", 1,
	                  ANC_MAX_QUERIES_CEILING, &cfg->limits.max_queries,
	                  err)) ||
	    (rv = get_u32(l, "limits", "max_k", 1, ANC_MAX_K_CEILING,
	                  &cfg->limits.max_k, err)) ||
	    (rv = get_u32(l, "limits", "max_text", 1, ANC_MAX_TEXT_CEILING,
	                  &cfg->limits.max_text, err)) ||
	    (rv = get_u32(l, "limits", "max_meta", 1, ANC_MAX_META_CEILING,
	                  &cfg->limits.max_meta, err)) ||
	    (rv = get_u32(l, "limits", "max_anchors", 1, 1000000,
	                  &cfg->limits.max_anchors, err)) ||
	    (rv = get_u32(l, "limits", "max_connections", 1, 1000000,
	                  &cfg->max_connections, err)) ||
	    (rv = get_u32(l, "limits", "send_timeout_ms", 1, 3600000, &to,
	                  err)))
		return rv;
	cfg->send_timeout_ms = (int)to;
	return ANC_OK;
}

/* "receipts": {"secret"?: 64 hex digits (the HMAC key; default: the
 * data directory's receipt.key), "keep"?: receipts kept, "days"?: days a
 * retained revision text outlives its last reference} (issue 8). */
static int
load_receipts(json_t *r, anc_server_config *cfg, anc_error *err)
{
	static const char *const known[] = {"secret", "keep", "days", NULL};
	json_t *sv;
	int rv;

	if (!json_is_object(r))
		return anc_error_set(err, ANC_EINVAL,
		                     "receipts: expected an object");
	if ((rv = unknown_keys(r, "receipts", known, err)) ||
	    (json_object_get(r, "keep") != NULL &&
	     (rv = get_u32(r, "receipts", "keep", 1, 100000000,
	                   &cfg->db.receipt_keep, err))) ||
	    (json_object_get(r, "days") != NULL &&
	     (rv = get_u32(r, "receipts", "days", 1, 36500,
	                   &cfg->db.receipt_days, err))))
		return rv;
	if ((sv = json_object_get(r, "secret")) != NULL) {
		const char *h = json_string_value(sv);
		if (h == NULL || strlen(h) != 64)
			return anc_error_set(err, ANC_EINVAL,
			                     "receipts.secret: expected 64 hex "
			                     "digits (32 bytes)");
		for (int i = 0; i < 32; i++) {
			unsigned int b;
			if (sscanf(h + 2 * i, "%2x", &b) != 1 ||
			    !isxdigit((unsigned char)h[2 * i]) ||
			    !isxdigit((unsigned char)h[2 * i + 1]))
				return anc_error_set(err, ANC_EINVAL,
				                     "receipts.secret: expected 64 "
				                     "hex digits (32 bytes)");
			cfg->db.receipt_key[i] = (uint8_t)b;
		}
		cfg->db.receipt_key_set = 1;
	}
	return ANC_OK;
}

int
anc_server_config_load(anc_server_config *cfg, const char *path,
                       anc_auth **auth_out, char **strings, anc_error *err)
{
	static const char *const known[] = {"keys", "tls", "listen", "limits",
	                                    "receipts", NULL};
	json_error_t je;
	json_t *root = NULL, *v;
	anc_auth *auth = NULL;
	strpool pool = {0};
	FILE *f = NULL;
	long size;
	int rv;

	*auth_out = NULL;
	*strings = NULL;
	/* Every string in the tree is shorter than the file: one block of
	 * the file's size (plus NULs) holds them all. */
	{
		struct stat sb;
		if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			rv = anc_error_set(err, ANC_EINVAL, "config %s: %s, "
			    "expected a JSON file", path,
			    S_ISDIR(sb.st_mode) ? "a directory"
			                        : "not a regular file");
			goto leave;
		}
	}
	if ((f = fopen(path, "rb")) == NULL ||
	    fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
		rv = anc_error_set(err, ANC_EIO, "config %s: cannot read: %m",
		                   path);
		goto leave;
	}
	if (size > (1 << 24)) {
		rv = anc_error_set(err, ANC_ETOOBIG,
		    "config %s: %ld bytes, at most 16 MiB", path, size);
		goto leave;
	}
	fclose(f);
	f = NULL;
	pool.cap = 2 * (size_t)size + 64;
	if ((pool.buf = malloc(pool.cap)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "config: out of memory");
		goto leave;
	}
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		    "config %s:%d:%d: %s", path, je.line, je.column, je.text);
		goto leave;
	}
	if (!json_is_object(root)) {
		rv = anc_error_set(err, ANC_EINVAL,
		    "config %s: expected a JSON object", path);
		goto leave;
	}
	if ((rv = unknown_keys(root, "top level", known, err)) != ANC_OK ||
	    (rv = anc_auth_create(&auth, err)) != ANC_OK)
		goto leave;

	if ((v = json_object_get(root, "keys")) != NULL) {
		static const char *const kk[] = {"id", "role", "salt", "sha256",
		                                 NULL};
		size_t i;
		json_t *k;
		if (!json_is_array(v)) {
			rv = anc_error_set(err, ANC_EINVAL,
			    "keys: expected an array of {id, role, salt, "
			    "sha256}");
			goto leave;
		}
		json_array_foreach(v, i, k) {
			char where[32];
			snprintf(where, sizeof(where), "keys[%zu]", i);
			const char *id = NULL, *role = NULL, *salt = NULL,
			           *hash = NULL;
			if (!json_is_object(k)) {
				rv = anc_error_set(err, ANC_EINVAL,
				    "%s: expected an object", where);
				goto leave;
			}
			if ((rv = unknown_keys(k, where, kk, err)) ||
			    (rv = get_str(k, where, "id", 1, &pool, &id, err)) ||
			    (rv = get_str(k, where, "role", 1, &pool, &role,
			                  err)) ||
			    (rv = get_str(k, where, "salt", 1, &pool, &salt,
			                  err)) ||
			    (rv = get_str(k, where, "sha256", 1, &pool, &hash,
			                  err)) ||
			    (rv = anc_auth_add(auth, id, role, salt, hash, err)))
				goto leave;
		}
	}
	if ((v = json_object_get(root, "tls")) != NULL) {
		static const char *const tk[] = {"cert", "key", "password",
		                                 NULL};
		if (!json_is_object(v)) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "tls: expected an object");
			goto leave;
		}
		if ((rv = unknown_keys(v, "tls", tk, err)) ||
		    (rv = get_str(v, "tls", "cert", 1, &pool,
		                  &cfg->tls_cert_file, err)) ||
		    (rv = get_str(v, "tls", "key", 1, &pool,
		                  &cfg->tls_key_file, err)) ||
		    (rv = get_str(v, "tls", "password", 0, &pool,
		                  &cfg->tls_key_password, err)))
			goto leave;
		/* now, not when a tls+tcp:// listener first needs them */
		for (int f = 0; f < 2; f++) {
			const char *path = f == 0 ? cfg->tls_cert_file
			                          : cfg->tls_key_file;
			if (access(path, R_OK) != 0) {
				rv = anc_error_set(err, ANC_EINVAL,
				    "tls.%s: cannot read '%s': %s",
				    f == 0 ? "cert" : "key", path,
				    strerror(errno));
				goto leave;
			}
		}
	}
	if ((v = json_object_get(root, "listen")) != NULL) {
		size_t i;
		json_t *u;
		char what[32];
		if (!json_is_array(v)) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "listen: expected an array of URLs");
			goto leave;
		}
		json_array_foreach(v, i, u) {
			if (!json_is_string(u)) {
				rv = anc_error_set(err, ANC_EINVAL,
				    "listen[%zu]: expected a URL string", i);
				goto leave;
			}
			/* named by its place in the file, not as --listen */
			snprintf(what, sizeof what, "listen[%zu]", i);
			if ((rv = anc_url_check(json_string_value(u), 1, what,
			                        err)) != ANC_OK)
				goto leave;
			if (cfg->nlisten == ANC_SERVER_MAX_LISTEN) {
				rv = anc_error_set(err, ANC_ETOOBIG,
				    "listen: at most %d URLs",
				    ANC_SERVER_MAX_LISTEN);
				goto leave;
			}
			cfg->listen[cfg->nlisten++] =
			    pool_dup(&pool, json_string_value(u), err);
		}
	}
	if ((v = json_object_get(root, "limits")) != NULL &&
	    (rv = load_limits(v, cfg, err)) != ANC_OK)
		goto leave;
	if ((v = json_object_get(root, "receipts")) != NULL &&
	    (rv = load_receipts(v, cfg, err)) != ANC_OK)
		goto leave;

	cfg->auth = auth;
	*auth_out = auth;
	*strings = pool.buf;
	auth = NULL;
	pool.buf = NULL;
	rv = ANC_OK;
leave:
	/* A field's message names the field; say which file it is in. */
	if (rv != ANC_OK && err != NULL && strncmp(err->msg, "config", 6) != 0)
		anc_error_wrap(err, "config %s", path);
	if (f != NULL)
		fclose(f);
	json_decref(root);
	anc_auth_free(auth);
	free(pool.buf);
	return rv;
}

/* Does some process listen on the unix socket at path? Read from
 * /proc/net/unix, not by connecting: nng 1.5.2 finds out by connecting,
 * and a connection closed during its handshake stops the listener that
 * got it from accepting anything more (nanomsg/nng#1518), so a second
 * server started on the same path would silence the first. 0 when it
 * cannot tell (nng's own check follows). */
static int
ipc_listening(const char *path)
{
	char line[PATH_MAX + 128], real[PATH_MAX], *rp;
	FILE *f = fopen("/proc/net/unix", "r");
	int found = 0;

	if (f == NULL)
		return 0;
	rp = realpath(path, real);
	while (!found && fgets(line, sizeof line, f) != NULL) {
		unsigned long flags, type, state;
		int off = -1;
		char *p;
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %lx %lx %lx %*s %n", &flags,
		           &type, &state, &off) != 3 || off < 0)
			continue;
		p = line + off;
		p[strcspn(p, "\n")] = '\0';
		if ((flags & 0x10000ul) == 0) /* __SO_ACCEPTCON: listening */
			continue;
		found = strcmp(p, path) == 0 || (rp != NULL &&
		                                 strcmp(p, rp) == 0);
	}
	fclose(f);
	return found;
}

int
anc_url_listen_check(const char *url, anc_error *err)
{
	struct stat st;
	int rv;

	/* An empty host (tcp://:7700) is every interface, as for nng; the
	 * loopback rule refuses it without keys. */
	if ((rv = anc_url_check(url, 1, "--listen", err)) != ANC_OK)
		return rv;
	if (strncmp(url, "ipc://", 6) == 0) {
		/* nng removes whatever is at an ipc path before it listens
		 * there (a stale socket, it assumes). */
		if (lstat(url + 6, &st) == 0 && !S_ISSOCK(st.st_mode))
			return anc_error_set(err, ANC_EEXIST,
			    "--listen %s: '%s' exists and is not a socket; "
			    "listening there would delete it (choose another "
			    "path)", url, url + 6);
		if (lstat(url + 6, &st) == 0 && ipc_listening(url + 6))
			return anc_error_set(err, ANC_EEXIST,
			    "--listen %s: another process listens on '%s' "
			    "(another anchorage-server?)", url, url + 6);
	}
	return ANC_OK;
}
