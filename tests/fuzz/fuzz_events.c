// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: one line of an event file (replay / record format).
 *
 * The line is handed over in an exactly sized, unterminated buffer so that
 * AddressSanitizer sees any read past `len`. Contracts checked beyond "no
 * crash, no leak": an error comes with a terminated, non-empty message; an
 * accepted event can be written back and read again to the same transition
 * (what --record writes, --replay must read).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsg_event ev, ev2;
	char err[256];
	char *line, *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int rc;

	line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	memset(&ev, 0, sizeof(ev));
	memset(err, 'x', sizeof(err));
	rc = tsg_event_parse_line(line, size, &ev, err, sizeof(err));
	free(line);
	if (rc < 0) {
		size_t n = strnlen(err, sizeof(err));
		if (n == 0 || n == sizeof(err))
			abort(); /* no message, or not terminated */
		return 0;
	}
	if (rc > 0)
		return 0; /* blank line */
	if (ev.from >= TSG_NSTATES || ev.to >= TSG_NSTATES)
		abort();

	f = open_memstream(&out, &outlen);
	if (!f)
		return 0;
	rc = tsg_event_write(f, &ev);
	fclose(f);
	if (rc == 0) {
		memset(&ev2, 0, sizeof(ev2));
		if (outlen == 0 || out[outlen - 1] != '\n')
			abort();
		if (tsg_event_parse_line(out, outlen - 1, &ev2, err, sizeof(err)) != 0) {
			fprintf(stderr, "written event does not read back: %s\n%s", err, out);
			abort();
		}
		if (ev2.from != ev.from || ev2.to != ev.to)
			abort();
		/* socket names map back while the intern table has room */
		if (tsg_intern_dropped() == 0 && ev2.sk != ev.sk)
			abort();
	}
	free(out);
	return 0;
}
