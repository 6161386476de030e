/*
 * fuzz_common.h — helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Design note
 * -----------
 * Each target is one LLVMFuzzerTestOneInput that feeds untrusted bytes to
 * one parser and then checks invariants the parser promises (a failure
 * names its code and a message; a success re-encodes to the same bytes, or
 * re-parses to the same value). A broken invariant is a finding: FZ_CHECK
 * prints what broke and aborts, so libFuzzer saves the input as a crash
 * file. Memory errors and undefined behaviour are caught by ASan and UBSan
 * (the fuzz build always has both, see scripts/fuzz.sh).
 *
 * Inputs that must be files (the vector-file readers take a path) are
 * written to one memfd per process and read back through /proc/self/fd:
 * no disk traffic, nothing left behind.
 */
#ifndef ANC_FUZZ_COMMON_H
#define ANC_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "anc_error.h"

#define FZ_CHECK(cond, ...)                                              \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "fuzz invariant broken at %s:%d: ",   \
			        __FILE__, __LINE__);                     \
			fprintf(stderr, __VA_ARGS__);                    \
			fputc('\n', stderr);                             \
			abort();                                         \
		}                                                        \
	} while (0)

/* A failed call must say what failed: its code, and a one-line message. */
static inline void
fz_check_error(int rc, const anc_error *err, const char *what)
{
	FZ_CHECK(rc > 0 && rc < ANC_ECODE_MAX, "%s: status %d is no anc_code",
	         what, rc);
	FZ_CHECK(err->code == rc, "%s: returned %d but err.code is %d", what,
	         rc, err->code);
	size_t n = strnlen(err->msg, sizeof err->msg);
	FZ_CHECK(n > 0 && n < sizeof err->msg,
	         "%s: error %d without a NUL-terminated message", what, rc);
	FZ_CHECK(memchr(err->msg, '\n', n) == NULL,
	         "%s: message is not one line: %s", what, err->msg);
}

/* Replace the contents of this process's memfd with data and return a path
 * that opens it ("/proc/self/fd/N"); exits when no memfd can be made (the
 * target cannot run at all then). */
static inline const char *
fz_memfile(const void *data, size_t len)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("anc-fuzz", 0);
		if (fd < 0) {
			perror("memfd_create");
			exit(2);
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 ||
	    (len > 0 && pwrite(fd, data, len, 0) != (ssize_t)len)) {
		perror("memfd write");
		exit(2);
	}
	return path;
}

#endif /* ANC_FUZZ_COMMON_H */
