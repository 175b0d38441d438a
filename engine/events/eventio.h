/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the event file format (docs/cli.md "Event file"): JSON Lines, one
 * transition or queue sample ("queue", "backlog", "drops") per line. Used by
 * --replay, --record and rule tests.
 */
#ifndef TSG_EVENTIO_H
#define TSG_EVENTIO_H

#include "tsg.h"
#include <jansson.h>
#include <stdio.h>
#include <sys/types.h>

/* Longest line accepted; longer lines are an error (and skipped). */
#define TSG_EVENT_LINE_MAX 65536

/*
 * Parses one line. Returns 0 with *ev filled, 1 for a blank line (nothing to
 * do), -EINVAL with a message in err: not JSON, not an object, ts/sk/to
 * missing, a field of the wrong type, an unknown state or family, a bad
 * address or port.
 */
int tsg_event_parse_line(const char *line, size_t len, struct tsg_event *ev, char *err,
			 size_t errlen);
/* Same for an already parsed JSON object (rule tests convert YAML to JSON). */
int tsg_event_from_json(json_t *o, struct tsg_event *ev, char *err, size_t errlen);
/* Size of a buffer for tsg_event_read_line. */
#define TSG_EVENT_LINE_BUF (TSG_EVENT_LINE_MAX + 2)
/*
 * Reads one line of an event file into buf (TSG_EVENT_LINE_BUF bytes), so
 * that memory stays bounded whatever the file holds. Returns the length, 0 at
 * the end, -E2BIG for a line longer than TSG_EVENT_LINE_MAX (the rest of it is
 * skipped), -EIO on a read error.
 */
ssize_t tsg_event_read_line(FILE *f, char *buf, size_t cap);
/*
 * An event file read line by line, as replay and rule tests read it: lines
 * bounded, events in non-decreasing ts. A bad line (not an event, too long,
 * ts going backwards) is reported as "NAME:LINE: error: ..." on standard
 * error, counted in `bad`, and skipped.
 */
struct tsg_event_reader {
	FILE *f;
	const char *name;
	char *line; /* TSG_EVENT_LINE_BUF bytes */
	size_t lineno, bad;
	uint64_t last; /* ts of the last event returned */
};
/* 0 or -ENOMEM. The reader does not own `f`. */
int tsg_event_reader_init(struct tsg_event_reader *r, FILE *f, const char *name);
/* 1: *ev is the next event; 0: the end; -EINTR: a signal interrupted the
 * read (call again to go on); other -errno: the file cannot be read. */
int tsg_event_reader_next(struct tsg_event_reader *r, struct tsg_event *ev);
void tsg_event_reader_fini(struct tsg_event_reader *r);

/* Writes *ev as one line (with '\n'). 0 or -errno. */
int tsg_event_write(FILE *f, const struct tsg_event *ev);
/* The event as a JSON object (new reference). */
json_t *tsg_event_to_json(const struct tsg_event *ev);

#endif
