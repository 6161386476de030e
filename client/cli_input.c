/*
 * cli_input.c — the loader's streaming inputs: JSONL lines and float32 rows
 * (.fvecs, .npy), each gzip-compressed or not, from files or stdin.
 *
 * Design note
 * -----------
 * Everything goes through zlib's gzread, which reads plain files unchanged
 * (gzdirect), so compression is transparent and positions are always
 * counted in the UNCOMPRESSED stream: that is what a checkpoint records,
 * and a resume reaches it by reading (decompressing) up to it, the only
 * way to seek in a gzip stream. Memory is one 1 MiB read buffer plus the
 * longest line, independent of the file size.
 *
 * At open, each reader fills its buffer with the first ANC_CLI_HEAD_BYTES
 * of the uncompressed stream and hashes them (SHA-256): the fingerprint of
 * the input for checkpoints. Because the bytes hashed are the bytes then
 * parsed, this works for stdin too.
 *
 * The .npy header is parsed strictly (numpy's format spec, versions 1.0,
 * 2.0 and 3.0): a file whose dtype, order or shape is not exactly "2-D
 * little-endian float32 in C order" is refused with the field named,
 * instead of being read as garbage floats.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "cli.h"
#include "cli_vecfile.h"

#define RD_BUF (1u << 20)

/* ---- a gzip-transparent buffered reader ---------------------------------- */

typedef struct rd {
	gzFile gz;
	char *path;       /* for messages ("-" shows as "stdin") */
	unsigned char *buf;
	size_t pos, end;  /* unread bytes are buf[pos, end) */
	int eof;
	uint64_t consumed; /* uncompressed bytes handed out */
	int64_t size;      /* on disk, or -1 */
	int gzip;
	char head_sha[65];
} rd;

static const char *
rd_name(const char *path)
{
	return strcmp(path, "-") == 0 ? "stdin" : path;
}

static void
rd_close(rd *r)
{
	if (r->gz != NULL)
		(void)gzclose_r(r->gz); /* read-only: nothing to lose */
	free(r->buf);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

/* Refill: move what is unread to the front and read more. */
static int
rd_fill(rd *r, anc_error *err)
{
	int n, zerr;
	const char *zmsg;

	if (r->eof)
		return ANC_OK;
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	while (r->end < RD_BUF && !r->eof) {
		n = gzread(r->gz, r->buf + r->end, (unsigned)(RD_BUF - r->end));
		if (n < 0) {
			zmsg = gzerror(r->gz, &zerr);
			return anc_error_set(err,
			    zerr == Z_ERRNO ? ANC_EIO : ANC_EMALFORMED,
			    "%s: read failed at byte %llu of the uncompressed "
			    "stream: %s", rd_name(r->path),
			    (unsigned long long)(r->consumed + r->end - r->pos),
			    zerr == Z_ERRNO ? strerror(errno) : zmsg);
		}
		if (n == 0) {
			/* zlib reports a gzip stream cut short (no trailer,
			 * or ended inside a block) only here, not as -1 */
			(void)gzerror(r->gz, &zerr);
			if (zerr == Z_BUF_ERROR)
				return anc_error_set(err, ANC_EMALFORMED,
				    "%s: truncated gzip input: it ends in the "
				    "middle of the compressed stream, after %llu "
				    "uncompressed bytes", rd_name(r->path),
				    (unsigned long long)(r->consumed + r->end -
				                         r->pos));
			r->eof = 1;
		}
		r->end += (size_t)n;
	}
	return ANC_OK;
}

static int
rd_open(rd *r, const char *path, anc_error *err)
{
	struct stat st;
	unsigned char md[32];
	size_t hn;
	int fd = -1, i, code;

	memset(r, 0, sizeof(*r));
	r->size = -1;
	if ((r->path = strdup(path)) == NULL ||
	    (r->buf = malloc(RD_BUF)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot allocate a read buffer", rd_name(path));
		goto fail;
	}
	if (strcmp(path, "-") == 0)
		fd = dup(STDIN_FILENO);
	else
		fd = open(path, O_RDONLY);
	if (fd < 0) {
		code = anc_error_set(err, ANC_EIO, "%s: cannot open: %s",
		    rd_name(path), strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		r->size = (int64_t)st.st_size;
	else if (strcmp(path, "-") != 0 && fstat(fd, &st) == 0 &&
	         S_ISDIR(st.st_mode)) {
		(void)close(fd);
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: is a directory, expected a file", path);
		goto fail;
	}
	if ((r->gz = gzdopen(fd, "rb")) == NULL) {
		(void)close(fd);
		code = anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot start the decompressor", rd_name(path));
		goto fail;
	}
	(void)gzbuffer(r->gz, 256u << 10); /* before the first read */
	if ((code = rd_fill(r, err)) != ANC_OK)
		goto fail;
	r->gzip = !gzdirect(r->gz);
	hn = r->end < ANC_CLI_HEAD_BYTES ? r->end : ANC_CLI_HEAD_BYTES;
	if ((code = anc_sha256(r->buf, hn, md)) != ANC_OK) {
		anc_error_set(err, code, "%s: cannot hash its first bytes",
		    rd_name(path));
		goto fail;
	}
	for (i = 0; i < 32; i++)
		snprintf(r->head_sha + 2 * i, 3, "%02x", md[i]);
	return ANC_OK;
fail:
	rd_close(r);
	return code;
}

/* A zeroed object of size bytes whose first member is an rd (lines or
 * vecs), with path opened into that rd; *out is NULL on failure. */
static int
rd_new(const char *path, size_t size, void **out, anc_error *err)
{
	rd *r;
	int code;

	*out = NULL;
	if ((r = calloc(1, size)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "%s: out of memory",
		    rd_name(path));
	if ((code = rd_open(r, path, err)) != ANC_OK) {
		free(r);
		return code;
	}
	*out = r;
	return ANC_OK;
}

/* Read exactly n bytes (or fewer at the end: *got). */
static int
rd_read(rd *r, void *dst, size_t n, size_t *got, anc_error *err)
{
	size_t take;
	int code;

	*got = 0;
	while (*got < n) {
		if (r->pos == r->end) {
			if (r->eof)
				break;
			if ((code = rd_fill(r, err)) != ANC_OK)
				return code;
			continue;
		}
		take = r->end - r->pos;
		if (take > n - *got)
			take = n - *got;
		memcpy((char *)dst + *got, r->buf + r->pos, take);
		r->pos += take;
		*got += take;
		r->consumed += take;
	}
	return ANC_OK;
}

/* ---- lines --------------------------------------------------------------- */

struct anc_cli_lines {
	rd r;        /* first: rd_new allocates the whole */
	char *line;  /* the current line when it spans refills */
	size_t lcap;
	uint64_t lineno;
};

int
anc_cli_lines_open(const char *path, anc_cli_lines **out, anc_error *err)
{
	void *l;
	int code = rd_new(path, sizeof(anc_cli_lines), &l, err);

	*out = l;
	return code;
}

void
anc_cli_lines_close(anc_cli_lines *l)
{
	if (l == NULL)
		return;
	rd_close(&l->r);
	free(l->line);
	free(l);
}

int
anc_cli_lines_next(anc_cli_lines *l, const char **line, size_t *len,
                   anc_error *err)
{
	rd *r = &l->r;
	unsigned char *nl;
	size_t n, avail, ll = 0, total = 0;
	int code, spans = 0, toolong = 0;

	*line = NULL;
	*len = 0;
	for (;;) {
		if (r->pos == r->end) {
			if (r->eof)
				break;
			if ((code = rd_fill(r, err)) != ANC_OK)
				return code;
			continue;
		}
		avail = r->end - r->pos;
		nl = memchr(r->buf + r->pos, '\n', avail);
		n = nl != NULL ? (size_t)(nl - (r->buf + r->pos)) + 1 : avail;
		if (!spans && nl != NULL) {
			/* The common case: the line is inside the buffer. */
			*line = (const char *)r->buf + r->pos;
			ll = n;
			r->pos += n;
			r->consumed += n;
			goto found;
		}
		total += n;
		if (total > ANC_CLI_LINE_SKIP_MAX) {
			/* /dev/zero, a binary file, a gzip bomb: not lines */
			*line = NULL;
			return anc_error_set(err, ANC_ETOOBIG,
			    "%s:%llu: more than %u MiB without a newline: not a "
			    "JSONL file?", rd_name(r->path),
			    (unsigned long long)l->lineno + 1,
			    ANC_CLI_LINE_SKIP_MAX >> 20);
		}
		if (toolong || ll + n > ANC_CLI_LINE_MAX + 2) {
			/* Read on to its end, keeping the start already
			 * copied: the caller may skip it as a bad line. */
			toolong = 1;
			r->pos += n;
			r->consumed += n;
			spans = 1;
			if (nl != NULL)
				break;
			continue;
		}
		if (ll + n + 1 > l->lcap) {
			size_t ncap = l->lcap ? l->lcap : RD_BUF;
			char *nb;

			while (ncap < ll + n + 1)
				ncap *= 2;
			if ((nb = realloc(l->line, ncap)) == NULL)
				return anc_error_set(err, ANC_ENOMEM,
				    "%s:%llu: cannot hold a line of %zu bytes",
				    rd_name(r->path),
				    (unsigned long long)l->lineno + 1, ll + n);
			l->line = nb;
			l->lcap = ncap;
		}
		memcpy(l->line + ll, r->buf + r->pos, n);
		ll += n;
		r->pos += n;
		r->consumed += n;
		spans = 1;
		if (nl != NULL)
			break;
	}
	if (!spans)
		return ANC_OK; /* end of input */
	*line = l->line;
	if (toolong) {
		l->lineno++;
		if (ll > ANC_CLI_LINE_KEEP)
			ll = ANC_CLI_LINE_KEEP;
		l->line[ll] = '\0';
		*len = ll;
		return anc_error_set(err, ANC_ETOOBIG,
		    "%s:%llu: line of %zu bytes, at most %u",
		    rd_name(r->path), (unsigned long long)l->lineno,
		    total - (nl != NULL), ANC_CLI_LINE_MAX);
	}
found:
	l->lineno++;
	{
		char *s = (char *)*line;

		if (ll > 0 && s[ll - 1] == '\n')
			ll--;
		if (ll > 0 && s[ll - 1] == '\r')
			ll--;
		if (ll > ANC_CLI_LINE_MAX) {
			/* just over: the same answer as the long path */
			size_t full = ll;
			ll = ANC_CLI_LINE_KEEP;
			s[ll] = '\0';
			*len = ll;
			return anc_error_set(err, ANC_ETOOBIG,
			    "%s:%llu: line of %zu bytes, at most %u",
			    rd_name(r->path), (unsigned long long)l->lineno,
			    full, ANC_CLI_LINE_MAX);
		}
		/* Overwrites the '\n' (or, for a last line without one, the
		 * byte after it: buffers keep one spare byte). */
		s[ll] = '\0';
	}
	*len = ll;
	return ANC_OK;
}

uint64_t
anc_cli_lines_lineno(const anc_cli_lines *l)
{
	return l->lineno;
}

uint64_t
anc_cli_lines_offset(const anc_cli_lines *l)
{
	return l->r.consumed;
}

uint64_t
anc_cli_lines_raw_offset(const anc_cli_lines *l)
{
	z_off_t o = gzoffset(l->r.gz);

	return o < 0 ? 0 : (uint64_t)o;
}

int64_t
anc_cli_lines_size(const anc_cli_lines *l)
{
	return l->r.size;
}

int
anc_cli_lines_gzip(const anc_cli_lines *l)
{
	return l->r.gzip;
}

const char *
anc_cli_lines_head_sha(const anc_cli_lines *l)
{
	return l->r.head_sha;
}

int
anc_cli_lines_count_file(const char *path, uint64_t *n, anc_error *err)
{
	unsigned char *buf = NULL;
	unsigned char last = '\n';
	struct stat st;
	ssize_t got;
	uint64_t c = 0;
	unsigned char *p, *e;
	int fd, code = ANC_OK;

	*n = 0;
	if (strcmp(path, "-") == 0)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		    "stdin: lines cannot be counted ahead");
	if ((fd = open(path, O_RDONLY)) < 0)
		return anc_error_set(err, ANC_EIO, "%s: cannot open: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		code = anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: not a regular file: lines cannot be counted ahead",
		    path);
		goto leave;
	}
	if ((buf = malloc(RD_BUF)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM, "%s: out of memory", path);
		goto leave;
	}
	got = read(fd, buf, 2);
	if (got == 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		code = anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: gzip-compressed: lines are not counted ahead", path);
		goto leave;
	}
	if (got < 0 || lseek(fd, 0, SEEK_SET) != 0) {
		code = anc_error_set(err, ANC_EIO, "%s: read failed: %s", path,
		    strerror(errno));
		goto leave;
	}
	while ((got = read(fd, buf, RD_BUF)) > 0) {
		for (p = buf, e = buf + got;
		     (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
			c++;
		last = buf[got - 1];
	}
	if (got < 0) {
		code = anc_error_set(err, ANC_EIO, "%s: read failed: %s", path,
		    strerror(errno));
		goto leave;
	}
	*n = c + (last != '\n');
leave:
	free(buf);
	(void)close(fd); /* read-only */
	return code;
}

/* ---- .npy headers ---------------------------------------------------------- */

typedef struct npy_lex {
	const char *p, *e;
	const char *origin;
} npy_lex;

static void
npy_ws(npy_lex *x)
{
	while (x->p < x->e && (*x->p == ' ' || *x->p == '\t'))
		x->p++;
}

static int
npy_expect(npy_lex *x, char c, const char *where, anc_error *err)
{
	npy_ws(x);
	if (x->p >= x->e || *x->p != c)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: %s: expected '%c', got %s%.*s%s",
		    x->origin, where, c, x->p < x->e ? "'" : "the end",
		    x->p < x->e ? 1 : 0, x->p, x->p < x->e ? "'" : "");
	x->p++;
	return ANC_OK;
}

/* A quoted Python string literal without escapes into out. */
static int
npy_string(npy_lex *x, char *out, size_t outsz, const char *where,
           anc_error *err)
{
	char q;
	const char *s;

	npy_ws(x);
	if (x->p >= x->e || (*x->p != '\'' && *x->p != '"'))
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: %s: expected a quoted string",
		    x->origin, where);
	q = *x->p++;
	s = x->p;
	while (x->p < x->e && *x->p != q && *x->p != '\\')
		x->p++;
	if (x->p >= x->e || *x->p != q)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: %s: unterminated or escaped string",
		    x->origin, where);
	if ((size_t)(x->p - s) >= outsz)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: %s: string of %zu bytes is too long",
		    x->origin, where, (size_t)(x->p - s));
	memcpy(out, s, (size_t)(x->p - s));
	out[x->p - s] = '\0';
	x->p++;
	return ANC_OK;
}

static int
npy_uint(npy_lex *x, uint64_t *v, const char *where, anc_error *err)
{
	uint64_t n = 0;
	const char *s;

	npy_ws(x);
	s = x->p;
	while (x->p < x->e && isdigit((unsigned char)*x->p)) {
		if (n > (UINT64_MAX - 9) / 10)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .npy header: %s: number too large", x->origin,
			    where);
		n = n * 10 + (uint64_t)(*x->p - '0');
		x->p++;
	}
	/* numpy writes plain ints; Python 2 era files may have "L". */
	if (x->p < x->e && *x->p == 'L')
		x->p++;
	if (x->p == s)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: %s: expected a non-negative integer",
		    x->origin, where);
	*v = n;
	return ANC_OK;
}

int
anc_cli_npy_header_parse(const char *hdr, size_t len, const char *origin,
                         uint64_t *rows, uint32_t *dim, anc_error *err)
{
	npy_lex x = {hdr, hdr + len, origin};
	char key[32], descr[32];
	uint64_t shape[3];
	int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
	int nshape, code;

	*rows = 0;
	*dim = 0;
	if (len == 0 || hdr[len - 1] != '\n')
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: expected to end with a newline", origin);
	/* numpy writes ASCII: a NUL would end a string early below */
	if (memchr(hdr, '\0', len) != NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: NUL byte at offset %zu", origin,
		    (size_t)((const char *)memchr(hdr, '\0', len) - hdr));
	x.e--; /* the newline */
	if ((code = npy_expect(&x, '{', "start", err)))
		return code;
	for (;;) {
		npy_ws(&x);
		if (x.p < x.e && *x.p == '}')
			break;
		if ((code = npy_string(&x, key, sizeof(key), "key", err)) ||
		    (code = npy_expect(&x, ':', key, err)))
			return code;
		if (strcmp(key, "descr") == 0 && !have_descr) {
			if ((code = npy_string(&x, descr, sizeof(descr),
			         "'descr'", err)))
				return code;
			have_descr = 1;
		} else if (strcmp(key, "fortran_order") == 0 && !have_order) {
			npy_ws(&x);
			if ((size_t)(x.e - x.p) >= 5 &&
			    memcmp(x.p, "False", 5) == 0) {
				x.p += 5;
			} else if ((size_t)(x.e - x.p) >= 4 &&
			           memcmp(x.p, "True", 4) == 0) {
				x.p += 4;
				fortran = 1;
			} else {
				return anc_error_set(err, ANC_EMALFORMED,
				    "%s: .npy header: 'fortran_order': expected "
				    "True or False", origin);
			}
			have_order = 1;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			if ((code = npy_expect(&x, '(', "'shape'", err)))
				return code;
			for (nshape = 0;;) {
				npy_ws(&x);
				if (x.p < x.e && *x.p == ')')
					break;
				if (nshape == 3)
					return anc_error_set(err,
					    ANC_EUNSUPPORTED,
					    "%s: .npy header: 'shape': expected "
					    "2 dimensions (rows, dim), got more "
					    "than 2", origin);
				if ((code = npy_uint(&x, &shape[nshape],
				         "'shape'", err)))
					return code;
				nshape++;
				npy_ws(&x);
				if (x.p < x.e && *x.p == ',')
					x.p++;
				else if (x.p >= x.e || *x.p != ')')
					return anc_error_set(err,
					    ANC_EMALFORMED, "%s: .npy header: "
					    "'shape': expected ',' or ')'",
					    origin);
			}
			x.p++; /* ')' */
			if (nshape != 2)
				return anc_error_set(err, ANC_EUNSUPPORTED,
				    "%s: .npy header: 'shape': expected 2 "
				    "dimensions (rows, dim), got %d", origin,
				    nshape);
			have_shape = 1;
		} else {
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .npy header: key '%s': %s (expected descr, "
			    "fortran_order, shape, once each)", origin, key,
			    (strcmp(key, "descr") == 0 ||
			     strcmp(key, "fortran_order") == 0 ||
			     strcmp(key, "shape") == 0) ? "repeated" :
			    "unknown");
		}
		npy_ws(&x);
		if (x.p < x.e && *x.p == ',') {
			x.p++;
			continue;
		}
		npy_ws(&x);
		if (x.p >= x.e || *x.p != '}')
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .npy header: after '%s': expected ',' or '}'",
			    origin, key);
	}
	x.p++; /* '}' */
	npy_ws(&x);
	if (x.p != x.e)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: unexpected text after the dict", origin);
	if (!have_descr || !have_order || !have_shape)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy header: missing '%s'", origin,
		    !have_descr ? "descr" : !have_order ? "fortran_order" :
		    "shape");
	if (strcmp(descr, "<f4") != 0)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: .npy header: 'descr': expected '<f4' (little-endian "
		    "float32), got '%s' (convert with "
		    "a.astype('<f4'))", origin, descr);
	if (fortran)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: .npy header: 'fortran_order': expected False (C "
		    "order), got True (save np.ascontiguousarray(a))", origin);
	if (shape[1] < 1 || shape[1] > ANC_DIM_MAX)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: .npy header: 'shape': dim expected 1..%d, got %llu",
		    origin, ANC_DIM_MAX, (unsigned long long)shape[1]);
	if (shape[0] > (uint64_t)INT64_MAX / 4 / shape[1])
		return anc_error_set(err, ANC_EINVAL,
		    "%s: .npy header: 'shape': %llu rows is too many", origin,
		    (unsigned long long)shape[0]);
	*rows = shape[0];
	*dim = (uint32_t)shape[1];
	return ANC_OK;
}

/* ---- float32 rows -------------------------------------------------------- */

struct anc_cli_vecs {
	rd r;             /* first: rd_new allocates the whole */
	int npy;
	uint32_t dim;
	int64_t rows;     /* known row count, or -1 */
	uint64_t row;     /* rows read */
	uint64_t data_off; /* bytes before the first row (npy header) */
};

static uint32_t
le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[3] << 24;
}

static int
host_le(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

static int
vecs_npy_header(anc_cli_vecs *v, anc_error *err)
{
	const char *name = rd_name(v->r.path);
	unsigned char pre[12];
	char *hdr = NULL;
	size_t got, lenlen, hlen;
	uint64_t rows;
	int code;

	if ((code = rd_read(&v->r, pre, 8, &got, err)))
		return code;
	if (got < 8)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy: truncated before the header length", name);
	if (pre[6] != 1 && pre[6] != 2 && pre[6] != 3)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: .npy: format version: expected 1.0, 2.0 or 3.0, got "
		    "%u.%u", name, pre[6], pre[7]);
	if (pre[7] != 0)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		    "%s: .npy: format version: expected %u.0, got %u.%u", name,
		    pre[6], pre[6], pre[7]);
	lenlen = pre[6] == 1 ? 2 : 4;
	if ((code = rd_read(&v->r, pre + 8, lenlen, &got, err)))
		return code;
	if (got < lenlen)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy: truncated header length", name);
	hlen = lenlen == 2 ? (size_t)(pre[8] | pre[9] << 8) : le32(pre + 8);
	if (hlen == 0 || hlen > (1u << 16))
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy: header length: expected 1..65536 bytes, got %zu",
		    name, hlen);
	if ((hdr = malloc(hlen)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "%s: out of memory", name);
	if ((code = rd_read(&v->r, hdr, hlen, &got, err)))
		goto leave;
	if (got < hlen) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy: header truncated: expected %zu bytes, got %zu",
		    name, hlen, got);
		goto leave;
	}
	if ((code = anc_cli_npy_header_parse(hdr, hlen, name, &rows, &v->dim,
	         err)))
		goto leave;
	v->rows = (int64_t)rows;
	v->data_off = 8 + lenlen + hlen;
	if (!v->r.gzip && v->r.size >= 0 &&
	    (uint64_t)v->r.size != v->data_off + rows * v->dim * 4) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s: .npy: 'shape' (%llu, %u) needs %llu bytes of data, the "
		    "file has %lld", name, (unsigned long long)rows, v->dim,
		    (unsigned long long)(rows * v->dim * 4),
		    (long long)v->r.size - (long long)v->data_off);
		goto leave;
	}
leave:
	free(hdr);
	return code;
}

static int
vecs_fvecs_header(anc_cli_vecs *v, anc_error *err)
{
	const char *name = rd_name(v->r.path);
	unsigned char b[4];
	int32_t d;

	if (v->r.end - v->r.pos < 4)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: %s, expected at least one .fvecs record", name,
		    v->r.end == v->r.pos ? "empty" : "truncated record 0");
	memcpy(b, v->r.buf + v->r.pos, 4); /* peek: the row reader eats it */
	d = (int32_t)le32(b);
	if (d <= 0 || d > ANC_DIM_MAX)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: .fvecs record 0: d=%d, expected 1..%d (not a vector "
		    "file? vector files are .fvecs, or .npy, gzip or not)",
		    name, d, ANC_DIM_MAX);
	v->dim = (uint32_t)d;
	v->rows = -1;
	if (!v->r.gzip && v->r.size >= 0) {
		uint64_t rec = 4 + 4 * (uint64_t)v->dim;

		if ((uint64_t)v->r.size % rec != 0)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: size %lld is not a whole number of %llu-byte "
			    "records (d=%u): truncated or mixed d", name,
			    (long long)v->r.size, (unsigned long long)rec,
			    v->dim);
		v->rows = (int64_t)((uint64_t)v->r.size / rec);
	}
	return ANC_OK;
}

int
anc_cli_vecs_open(const char *path, anc_cli_vecs **out, anc_error *err)
{
	anc_cli_vecs *v;
	void *p;
	int code;

	*out = NULL;
	if ((code = rd_new(path, sizeof(*v), &p, err)) != ANC_OK)
		return code;
	v = p;
	v->npy = v->r.end - v->r.pos >= 6 &&
	    memcmp(v->r.buf + v->r.pos, "\x93NUMPY", 6) == 0;
	if (!v->npy && v->r.end - v->r.pos > 0 && v->r.end - v->r.pos < 6 &&
	    memcmp(v->r.buf + v->r.pos, "\x93NUMPY",
	           v->r.end - v->r.pos) == 0) {
		code = anc_error_set(err, ANC_EMALFORMED, "%s: a .npy file cut "
		    "short: %zu bytes, the magic alone is 6", rd_name(path),
		    v->r.end - v->r.pos);
		anc_cli_vecs_close(v);
		return code;
	}
	code = v->npy ? vecs_npy_header(v, err) : vecs_fvecs_header(v, err);
	if (code != ANC_OK) {
		anc_cli_vecs_close(v);
		return code;
	}
	*out = v;
	return ANC_OK;
}

void
anc_cli_vecs_close(anc_cli_vecs *v)
{
	if (v == NULL)
		return;
	rd_close(&v->r);
	free(v);
}

uint32_t
anc_cli_vecs_dim(const anc_cli_vecs *v)
{
	return v->dim;
}

int64_t
anc_cli_vecs_rows(const anc_cli_vecs *v)
{
	return v->rows;
}

const char *
anc_cli_vecs_format(const anc_cli_vecs *v)
{
	return v->npy ? "npy" : "fvecs";
}

int64_t
anc_cli_vecs_size(const anc_cli_vecs *v)
{
	return v->r.size;
}

const char *
anc_cli_vecs_head_sha(const anc_cli_vecs *v)
{
	return v->r.head_sha;
}

uint64_t
anc_cli_vecs_row(const anc_cli_vecs *v)
{
	return v->row;
}

static void
swap32(float *f, uint32_t n)
{
	uint8_t *b = (uint8_t *)f;
	uint8_t t;
	uint32_t i;

	for (i = 0; i < n; i++, b += 4) {
		t = b[0], b[0] = b[3], b[3] = t;
		t = b[1], b[1] = b[2], b[2] = t;
	}
}

int
anc_cli_vecs_next(anc_cli_vecs *v, float *dst, int *eof, anc_error *err)
{
	const char *name = rd_name(v->r.path);
	unsigned char b[4];
	size_t got, want = (size_t)v->dim * 4;
	int code;

	*eof = 0;
	if (v->npy && v->rows >= 0 && v->row == (uint64_t)v->rows) {
		/* The shape says we are done: anything more is garbage. */
		if ((code = rd_read(&v->r, b, 1, &got, err)))
			return code;
		if (got != 0)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .npy: data after the %lld rows of 'shape'",
			    name, (long long)v->rows);
		*eof = 1;
		return ANC_OK;
	}
	if (!v->npy) {
		if ((code = rd_read(&v->r, b, 4, &got, err)))
			return code;
		if (got == 0) {
			*eof = 1;
			return ANC_OK;
		}
		if (got < 4)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .fvecs record %llu truncated in its header",
			    name, (unsigned long long)v->row);
		if (le32(b) != v->dim)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: .fvecs record %llu: d=%d, expected %u as in "
			    "record 0", name, (unsigned long long)v->row,
			    (int32_t)le32(b), v->dim);
	}
	if ((code = rd_read(&v->r, dst, want, &got, err)))
		return code;
	if (got < want)
		return anc_error_set(err, ANC_EMALFORMED,
		    "%s: %s row %llu truncated: expected %zu bytes, got %zu",
		    name, v->npy ? ".npy" : ".fvecs",
		    (unsigned long long)v->row, want, got);
	if (!host_le())
		swap32(dst, v->dim);
	v->row++;
	return ANC_OK;
}

/*
 * Rows [begin, end) (end UINT32_MAX: to the end) of a vector file. A plain
 * .fvecs is read by seeking to its rows (cli_vecfile.c); a .npy or a
 * gzip-compressed file, the loader's formats, streams through
 * anc_cli_vecs up to the last row asked for.
 */
int
anc_cli_vectors_read(const char *path, uint32_t begin, uint32_t end,
                   float **out, uint32_t *nq, uint32_t *dim, anc_error *err)
{
	return anc_cli_vectors_read_max(path, begin, end, ANC_CLI_VECTORS_MAX,
	                                out, nq, dim, err);
}

int
anc_cli_vectors_read_max(const char *path, uint32_t begin, uint32_t end,
                         size_t max_bytes, float **out, uint32_t *nq,
                         uint32_t *dim, anc_error *err)
{
	anc_cli_vecs *v = NULL;
	float *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	uint64_t row = 0;
	uint32_t d;
	int code, eof = 0;

	*out = NULL;
	*nq = 0;
	if ((code = anc_cli_vecs_open(path, &v, err)) != ANC_OK)
		return code;
	if (strcmp(anc_cli_vecs_format(v), "fvecs") == 0 &&
	    anc_cli_vecs_rows(v) >= 0) {
		anc_cli_vecs_close(v);
		return anc_fvecs_read(path, begin, end, out, nq, dim, err);
	}
	d = anc_cli_vecs_dim(v);
	for (; end == UINT32_MAX || row < end; row++) {
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			/* A pipe or a gzip bomb has no size to refuse up
			 * front: stop at a bound instead of eating memory. */
			if (n * d * sizeof *buf >= max_bytes) {
				code = anc_error_set(err, ANC_ETOOBIG,
				    "%s: more than %zu rows of d=%u (%zu MiB); "
				    "read a part of it with --rows A-B", path, n,
				    d, max_bytes >> 20);
				goto fail;
			}
			if (nc * d * sizeof *buf > max_bytes)
				nc = max_bytes / (d * sizeof *buf) + 1;
			if (nc > UINT32_MAX ||
			    (nb = realloc(buf, nc * d * sizeof *buf)) == NULL) {
				code = anc_error_set(err, ANC_ENOMEM,
				    "%s: cannot hold %zu rows of d=%u", path, nc,
				    d);
				goto fail;
			}
			buf = nb;
			cap = nc;
		}
		if ((code = anc_cli_vecs_next(v, buf + n * d, &eof, err)))
			goto fail;
		if (eof)
			break;
		if (row >= begin)
			n++;
	}
	if (n == 0 || (end != UINT32_MAX && row < end)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: rows [%u, %u) out of range: the file has %llu records",
		    path, begin, end == UINT32_MAX ? begin + 1 : end,
		    (unsigned long long)row);
		goto fail;
	}
	anc_cli_vecs_close(v);
	*out = buf;
	*nq = (uint32_t)n;
	*dim = d;
	return ANC_OK;
fail:
	anc_cli_vecs_close(v);
	free(buf);
	return code;
}
