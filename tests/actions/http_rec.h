/* SPDX-License-Identifier: MIT */
/* A recording HTTP server for the webhook tests (libmicrohttpd, loopback,
 * port chosen by the kernel), and a server that accepts and never answers. */
#ifndef TSG_HTTP_REC_H
#define TSG_HTTP_REC_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#define REC_MAX 64

struct rec_req {
	char *url, *body, *ctype, *xrule, *xcomm, *xevil;
	uint64_t at_ns;
};

struct rec_srv {
	struct MHD_Daemon *d;
	uint16_t port;
	pthread_mutex_t lock;
	struct rec_req req[REC_MAX];
	int n;
	int fail_n;   /* answer 500 to this many requests first */
	int code;     /* then this (default 200) */
};

struct rec_conn {
	char *buf;
	size_t len;
};

static char *rec_hdr(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

	return v ? strdup(v) : NULL;
}

static enum MHD_Result rec_handler(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version,
				   const char *upload, size_t *upload_size, void **con_cls)
{
	struct rec_srv *s = cls;
	struct rec_conn *rc = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int code;

	(void)method;
	(void)version;
	if (!rc) {
		rc = calloc(1, sizeof(*rc));
		*con_cls = rc;
		return MHD_YES;
	}
	if (*upload_size) {
		rc->buf = realloc(rc->buf, rc->len + *upload_size + 1);
		memcpy(rc->buf + rc->len, upload, *upload_size);
		rc->len += *upload_size;
		rc->buf[rc->len] = 0;
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&s->lock);
	if (s->n < REC_MAX) {
		struct rec_req *r = &s->req[s->n++];

		r->url = strdup(url);
		r->body = rc->buf ? rc->buf : strdup("");
		rc->buf = NULL;
		r->ctype = rec_hdr(c, "Content-Type");
		r->xrule = rec_hdr(c, "X-Rule");
		r->xcomm = rec_hdr(c, "X-Comm");
		r->xevil = rec_hdr(c, "X-Evil");
		r->at_ns = t_now_ns();
	}
	if (s->fail_n > 0) {
		s->fail_n--;
		code = 500;
	} else {
		code = s->code ? s->code : 200;
	}
	pthread_mutex_unlock(&s->lock);
	resp = MHD_create_response_from_buffer(code == 200 ? 2 : 4, code == 200 ? "ok" : "busy",
					       MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, (unsigned)code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void rec_done(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	struct rec_conn *rc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rc) {
		free(rc->buf);
		free(rc);
	}
	*con_cls = NULL;
}

static struct rec_srv *rec_start(void)
{
	struct rec_srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const union MHD_DaemonInfo *info;

	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
				NULL, NULL, rec_handler, s, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_NOTIFY_COMPLETED, rec_done, s, MHD_OPTION_END);
	assert_non_null(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	s->port = info->port;
	return s;
}

static int rec_count(struct rec_srv *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static bool rec_wait(struct rec_srv *s, int n, long ms)
{
	for (long t = 0; t <= ms; t += 10) {
		if (rec_count(s) >= n)
			return true;
		t_sleep_ms(10);
	}
	return false;
}

/* Nothing reaches s within 200 ms (after a dry run). */
static void rec_expect_none(struct rec_srv *s)
{
	t_sleep_ms(200);
	assert_int_equal(rec_count(s), 0);
}

static void rec_stop(struct rec_srv *s)
{
	MHD_stop_daemon(s->d);
	for (int i = 0; i < s->n; i++) {
		free(s->req[i].url);
		free(s->req[i].body);
		free(s->req[i].ctype);
		free(s->req[i].xrule);
		free(s->req[i].xcomm);
		free(s->req[i].xevil);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* A server that hangs (hang_start): its socket and port. */
struct hang_srv {
	int fd;
	uint16_t port;
};

/* Listens and never accepts: the kernel completes the handshake, the request
 * goes into the socket, no answer ever comes. Returns the fd; *port set. */
static int hang_start(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static struct hang_srv hang_open(void)
{
	struct hang_srv h;

	h.fd = hang_start(&h.port);
	return h;
}

/* A loopback port with nothing listening (bound, then closed). */
static uint16_t closed_port(void)
{
	uint16_t port;
	int fd = hang_start(&port);

	close(fd);
	return port;
}

#endif
