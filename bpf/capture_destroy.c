/* SPDX-License-Identifier: MIT */
/*
 * tsguard: closing one socket in the kernel (the destroy action's seam).
 *
 * NOT IMPLEMENTED YET: this is the interface the destroy action calls, with
 * a stub that refuses. TODO (kernel side): an `iter/tcp` program that, for
 * the socket whose bpf_get_socket_cookie() equals the cookie written into
 * its map (and only that one), calls the kfunc bpf_sock_destroy() (in this
 * kernel's BTF; callable from iterator programs, which hold the socket
 * lock). The iterator lists the sockets of the network namespace of the
 * thread that opens it, so for a socket in another namespace the call
 * setns()s a dedicated thread into `netns` (by /proc/.../ns/net inode), runs
 * the iterator there, and comes back. Result: 0 when the socket was found
 * and destroyed, -ENOENT when no socket has that cookie.
 */
#include "capture.h"

#include <errno.h>

int tsg_capture_destroy(struct tsg_capture *c, uint64_t cookie, uint32_t netns)
{
	(void)c;
	(void)cookie;
	(void)netns;
	return -ENOSYS;
}
