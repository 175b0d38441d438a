/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the `when` of a rule (docs/rules.md "rules"): its kind, the keys
 * that kind allows and needs, their values (states, by, durations,
 * thresholds). parse_rules.c reads the rest of a rule.
 */
#include "load_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- states and by ------------------------------------------------------- */

static int parse_state(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what)
{
	const char *s;
	char w[96], dym[96];
	int st;

	snprintf(w, sizeof(w), "a TCP state for %s", what);
	s = ld_scalar(L, f, n, w);
	if (!s)
		return -EINVAL;
	st = tsg_state_parse(s);
	if (st > 0)
		return st;
	ld_err(
	    L, f, n,
	    "unknown state \"%s\" for %s: expected ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, "
	    "FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING or NEW_SYN_RECV%s",
	    s, what, ld_dym(s, tsg_state_words(), dym, sizeof(dym)));
	return -EINVAL;
}

static int parse_states(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *what,
			tsg_statemask *out)
{
	tsg_statemask m = 0;
	int r = 0;

	if (n && n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top) {
			ld_err(L, f, n, "expected a state or a list of states for %s", what);
			return -EINVAL;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			int st = parse_state(L, f, ld_node(f, *i), what);

			if (st < 0)
				r = st;
			else
				m |= (tsg_statemask)(1u << st);
		}
	} else {
		int st = parse_state(L, f, n, what);

		if (st < 0)
			r = st;
		else
			m |= (tsg_statemask)(1u << st);
	}
	*out = m;
	return r;
}

static int parse_by1(struct ld *L, struct ld_file *f, yaml_node_t *n, uint32_t *by)
{
	const char *s = ld_scalar(L, f, n, "a field name for by");
	char dym[96];
	int sf;

	if (!s)
		return -EINVAL;
	sf = tsg_sfield_parse(s);
	if (sf < 0) {
		ld_err(L, f, n,
		       "unknown field \"%s\" for by: expected comm, pid, uid, cgroup, laddr, "
		       "lport, raddr, rport, family, netns, container or pod%s",
		       s, ld_dym(s, tsg_sfield_words(), dym, sizeof(dym)));
		return -EINVAL;
	}
	if (sf == TSG_SF_NETNS_NAME) {
		/* a name denotes one namespace at a time: the inode is the key */
		ld_err(L, f, n,
		       "netns_name is not a field for by: use netns (the name is in its alerts)");
		return -EINVAL;
	}
	*by |= TSG_HAVE(sf);
	return 0;
}

static int parse_by(struct ld *L, struct ld_file *f, yaml_node_t *n, uint32_t *by)
{
	int r = 0;

	*by = 0;
	if (n && n->type == YAML_SEQUENCE_NODE) {
		if (n->data.sequence.items.start == n->data.sequence.items.top) {
			ld_err(L, f, n, "expected a field or a list of fields for by");
			return -EINVAL;
		}
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++)
			if (parse_by1(L, f, ld_node(f, *i), by) < 0)
				r = -EINVAL;
		return r;
	}
	return parse_by1(L, f, n, by);
}

/* ---- when ---------------------------------------------------------------- */

static const char *const when_keys[] = { "from",	  "to",		   "state", "longer_than",
					 "count_above",	  "resolve_below", "by",    "for",
					 "rate_above",	  "per",	   "queue_above", NULL };
enum { WK_FROM, WK_TO, WK_STATE, WK_LONGER, WK_COUNT, WK_RESOLVE, WK_BY, WK_FOR, WK_RATE,
       WK_PER, WK_QUEUE, WK_N };

/* which when keys each kind allows */
static const uint32_t kind_allows[] = {
	[TSG_KIND_TRANSITION] = 1u << WK_FROM | 1u << WK_TO | 1u << WK_BY,
	[TSG_KIND_TIME] = 1u << WK_STATE | 1u << WK_LONGER,
	[TSG_KIND_COUNT] = 1u << WK_STATE | 1u << WK_COUNT | 1u << WK_RESOLVE | 1u << WK_BY |
			   1u << WK_FOR,
	[TSG_KIND_RATE] = 1u << WK_FROM | 1u << WK_TO | 1u << WK_RATE | 1u << WK_PER |
			  1u << WK_BY | 1u << WK_FOR,
	[TSG_KIND_QUEUE] = 1u << WK_STATE | 1u << WK_QUEUE | 1u << WK_FOR,
};
static const char *const kind_example[] = {
	[TSG_KIND_TRANSITION] = "{from: SYN_SENT, to: CLOSE}",
	[TSG_KIND_TIME] = "{state: SYN_SENT, longer_than: 500ms}",
	[TSG_KIND_COUNT] = "{state: TIME_WAIT, count_above: 500, by: comm}",
	[TSG_KIND_RATE] = "{from: SYN_SENT, to: CLOSE, rate_above: 50, per: 10s, by: raddr}",
	[TSG_KIND_QUEUE] = "{state: LISTEN, queue_above: 90%, for: 5s}",
};

/* The keys of a when as written: kn/vn from ld_map, and the keys that an
 * unknown key is close to (ld_guess), which count as present for the checks
 * that would only follow from their absence. */
struct when_keys {
	yaml_node_t *kn[WK_N], *vn[WK_N];
	uint64_t guessed;
	bool suppressed; /* an error was left out for a guessed key */
};

static bool wk_has(struct when_keys *w, int k)
{
	if (w->kn[k])
		return true;
	if (LD_GUESSED(w->guessed, k)) {
		w->suppressed = true;
		return true;
	}
	return false;
}

/* A kind whose defining key is written; else a guessed one that allows every
 * written key; else transition. -EINVAL (diagnosed) for two kinds. */
static int when_kind(struct ld *L, struct ld_file *f, struct when_keys *w)
{
	static const int kind_key[TSG_KIND_N] = {-1, WK_LONGER, WK_COUNT, WK_RATE, WK_QUEUE};
	int first = -1;

	for (int k = TSG_KIND_TIME; k < TSG_KIND_N; k++) {
		if (!w->kn[kind_key[k]])
			continue;
		if (first < 0) {
			first = k;
			continue;
		}
		ld_err(L, f, w->kn[kind_key[k]],
		       "\"%s\" (a %s rule) cannot be combined with \"%s\" (a %s rule): a when has "
		       "exactly one kind",
		       when_keys[kind_key[k]], tsg_kind_name(k), when_keys[kind_key[first]],
		       tsg_kind_name(first));
		return -EINVAL;
	}
	if (first >= 0)
		return first;
	for (int k = TSG_KIND_TIME; k < TSG_KIND_N; k++) {
		bool fits = LD_GUESSED(w->guessed, kind_key[k]);

		for (int i = 0; fits && i < WK_N; i++)
			if (w->kn[i] && !(kind_allows[k] & (1u << i)))
				fits = false;
		if (fits) {
			w->suppressed = true;
			return k;
		}
	}
	return TSG_KIND_TRANSITION;
}

/* Written keys that the kind does not allow. */
static int when_disallowed(struct ld *L, struct ld_file *f, const struct when_keys *w, int kind)
{
	int rc = 0;

	for (int k = 0; k < WK_N; k++) {
		yaml_node_t *kn = w->kn[k];

		if (!kn || (kind_allows[kind] & (1u << k)))
			continue;
		if (k == WK_BY && kind == TSG_KIND_TIME)
			ld_err(L, f, kn,
			       "\"by\" is not allowed in a time rule (when with longer_than): its "
			       "key is the socket");
		else if (k == WK_BY && kind == TSG_KIND_QUEUE)
			ld_err(L, f, kn,
			       "\"by\" is not allowed in a queue rule (when with queue_above): its "
			       "key is the listening socket");
		else if (kind == TSG_KIND_TRANSITION && k == WK_STATE)
			ld_err(L, f, kn,
			       "\"state\" needs longer_than (time in state: %s) or count_above "
			       "(count: %s)",
			       kind_example[TSG_KIND_TIME], kind_example[TSG_KIND_COUNT]);
		else if (kind == TSG_KIND_TRANSITION && (k == WK_FOR || k == WK_RESOLVE || k == WK_PER))
			ld_err(L, f, kn,
			       "\"%s\" is not allowed in a transition rule; it qualifies "
			       "count_above or rate_above",
			       when_keys[k]);
		else
			ld_err(L, f, kn, "\"%s\" is not allowed in a %s rule (e.g. when: %s)",
			       when_keys[k], tsg_kind_name(kind), kind_example[kind]);
		rc = -EINVAL;
	}
	return rc;
}

/* The keys the kind needs; a guessed key counts as written. */
static int when_required(struct ld *L, struct ld_file *f, yaml_node_t *n, struct when_keys *w,
			 const struct tsg_rule *r)
{
	char miss[64] = "";

	switch (r->kind) {
	case TSG_KIND_TRANSITION:
		if (w->kn[WK_FROM] || w->kn[WK_TO] || w->kn[WK_STATE] || wk_has(w, WK_FROM) ||
		    wk_has(w, WK_TO) || wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n,
		       "when of rule \"%s\" needs a condition: from/to (transition), state + "
		       "longer_than (time), state + count_above + by (count) or from/to + "
		       "rate_above + per + by (rate) or state: LISTEN + queue_above (queue)",
		       r->name);
		return -EINVAL;
	case TSG_KIND_TIME:
		if (wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n, "a time rule needs state (e.g. when: %s)", kind_example[r->kind]);
		return -EINVAL;
	case TSG_KIND_QUEUE:
		if (wk_has(w, WK_STATE))
			return 0;
		ld_err(L, f, n, "a queue rule needs state: LISTEN (e.g. when: %s)",
		       kind_example[r->kind]);
		return -EINVAL;
	case TSG_KIND_COUNT: {
		bool st = wk_has(w, WK_STATE), by = wk_has(w, WK_BY);

		if (st && by)
			return 0;
		ld_err(L, f, n, "a count rule needs %s (e.g. when: %s)",
		       !st && !by ? "state and by"
		       : !st	  ? "state"
				  : "by",
		       kind_example[r->kind]);
		return -EINVAL;
	}
	default:
		if (!w->kn[WK_FROM] && !w->kn[WK_TO] && !wk_has(w, WK_FROM) && !wk_has(w, WK_TO))
			strcat(miss, "from and/or to");
		if (!wk_has(w, WK_PER))
			strcat(strcat(miss, miss[0] ? ", " : ""), "per");
		if (!wk_has(w, WK_BY))
			strcat(strcat(miss, miss[0] ? ", " : ""), "by");
		if (!miss[0])
			return 0;
		ld_err(L, f, n, "a rate rule needs %s (e.g. when: %s)", miss,
		       kind_example[r->kind]);
		return -EINVAL;
	}
}

/* queue_above: N (a number of connections) or "P%" (0 < P <= 100, of the backlog). */
static int parse_queue_above(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	const char *s;
	size_t len;
	char *end;
	double p;

	if (n && n->type == YAML_SCALAR_NODE && n->data.scalar.length &&
	    n->data.scalar.value[n->data.scalar.length - 1] != '%')
		return ld_uint(L, f, n, "queue_above", UINT32_MAX, &r->threshold);
	s = ld_scalar(L, f, n, "a number or a percentage (\"90%\") for queue_above");
	if (!s)
		return -EINVAL;
	len = strlen(s);
	errno = 0;
	p = strtod(s, &end);
	if (errno || end != s + len - 1 || !(p > 0 && p <= 100) || s[0] == ' ') {
		ld_err(L, f, n,
		       "queue_above \"%s\": a percentage must be above 0%% and at most 100%% "
		       "(e.g. \"90%%\")",
		       s);
		return -EINVAL;
	}
	r->queue_pct_x100 = (uint32_t)(p * 100 + 0.5);
	if (!r->queue_pct_x100)
		r->queue_pct_x100 = 1;
	return 0;
}

/* The values of the written keys. */
static int when_values(struct ld *L, struct ld_file *f, const struct when_keys *w,
		       struct tsg_rule *r)
{
	yaml_node_t *const *kn = w->kn, *const *vn = w->vn;
	int rc = 0;

	if (kn[WK_FROM] && parse_states(L, f, vn[WK_FROM], "from", &r->from) < 0)
		rc = -EINVAL;
	if (kn[WK_TO] && parse_states(L, f, vn[WK_TO], "to", &r->to) < 0)
		rc = -EINVAL;
	if (kn[WK_STATE] && r->kind != TSG_KIND_TRANSITION) {
		int st = parse_state(L, f, vn[WK_STATE], "state");

		if (st < 0) {
			rc = -EINVAL;
		} else if (r->kind == TSG_KIND_QUEUE && st != TSG_LISTEN) {
			ld_err(L, f, vn[WK_STATE],
			       "a queue rule watches listening sockets: state must be LISTEN, not %s",
			       tsg_state_name(st));
			rc = -EINVAL;
		} else {
			r->state = (uint8_t)st;
		}
	}
	if (kn[WK_QUEUE] && parse_queue_above(L, f, vn[WK_QUEUE], r) < 0)
		rc = -EINVAL;
	if (kn[WK_LONGER] &&
	    ld_duration(L, f, vn[WK_LONGER], "longer_than", true, &r->longer_than_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_COUNT] &&
	    ld_uint(L, f, vn[WK_COUNT], "count_above", UINT32_MAX, &r->threshold) < 0)
		rc = -EINVAL;
	if (kn[WK_RATE] && ld_uint(L, f, vn[WK_RATE], "rate_above", UINT32_MAX, &r->threshold) < 0)
		rc = -EINVAL;
	r->resolve_below = r->threshold;
	if (kn[WK_RESOLVE] && r->kind == TSG_KIND_COUNT) {
		if (ld_uint(L, f, vn[WK_RESOLVE], "resolve_below", UINT32_MAX, &r->resolve_below) < 0) {
			rc = -EINVAL;
		} else if (kn[WK_COUNT] && r->resolve_below > r->threshold) {
			ld_err(L, f, vn[WK_RESOLVE],
			       "resolve_below (%llu) must not be above count_above (%llu)",
			       (unsigned long long)r->resolve_below,
			       (unsigned long long)r->threshold);
			rc = -EINVAL;
		}
	}
	if (kn[WK_PER] && ld_duration(L, f, vn[WK_PER], "per", true, &r->per_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_FOR] && ld_duration(L, f, vn[WK_FOR], "for", false, &r->for_ns) < 0)
		rc = -EINVAL;
	if (kn[WK_BY] && r->kind != TSG_KIND_TIME && r->kind != TSG_KIND_QUEUE &&
	    parse_by(L, f, vn[WK_BY], &r->by) < 0)
		rc = -EINVAL;
	return rc;
}

/* A when: its kind, the keys that kind allows and needs, their values. An
 * unknown key close to a key the when lacks is the one error reported for
 * it (ld_map); what only follows from that key's absence is left out, and
 * the when is still invalid. */
int ld_when(struct ld *L, struct ld_file *f, yaml_node_t *n, struct tsg_rule *r)
{
	struct when_keys w = {0};
	char what[128];
	int kind, rc;

	snprintf(what, sizeof(what), "when of rule \"%s\"", r->name);
	if (!ld_map(L, f, n, what, when_keys, w.kn, w.vn))
		return -EINVAL;
	w.guessed = ld_guess(f, n, when_keys);
	kind = when_kind(L, f, &w);
	if (kind < 0)
		return kind;
	r->kind = kind;
	rc = when_disallowed(L, f, &w, kind);
	if (when_required(L, f, n, &w, r) < 0)
		rc = -EINVAL;
	if (when_values(L, f, &w, r) < 0)
		rc = -EINVAL;
	return rc < 0 || w.suppressed ? -EINVAL : 0;
}
