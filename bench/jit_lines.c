// SPDX-License-Identifier: MIT
/*
 * tsg_jit_lines ID: the JIT line table of loaded BPF program ID, one line
 * per entry: "<jited address, hex> <xlated insn> <source line> <source>".
 * bench/bpf_prof.sh maps perf samples to source lines with it (bpftool
 * here has no libbfd, so no `prog dump jited`). Needs root.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info), nl, njl, lrs;
	struct btf *btf;
	__u64 *jl;
	char *li;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PROG_ID\n", argv[0]);
		return 2;
	}
	fd = bpf_prog_get_fd_by_id(atoi(argv[1]));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "program %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	nl = info.nr_line_info;
	njl = info.nr_jited_line_info;
	lrs = info.line_info_rec_size;
	jl = calloc(njl ? njl : 1, sizeof(*jl));
	li = calloc(nl ? nl : 1, lrs ? lrs : 1);
	if (!jl || !li)
		return 1;
	btf = btf__load_from_kernel_by_id(info.btf_id);
	memset(&info, 0, sizeof(info));
	info.nr_line_info = nl;
	info.line_info_rec_size = lrs;
	info.line_info = (__u64)(unsigned long)li;
	info.nr_jited_line_info = njl;
	info.jited_line_info_rec_size = sizeof(*jl);
	info.jited_line_info = (__u64)(unsigned long)jl;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "program %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (__u32 i = 0; i < nl && i < njl; i++) {
		const struct bpf_line_info *l = (const void *)(li + (size_t)i * lrs);
		const char *src = btf ? btf__name_by_offset(btf, l->line_off) : NULL;

		printf("%llx %u %u %s\n", (unsigned long long)jl[i], l->insn_off,
		       BPF_LINE_INFO_LINE_NUM(l->line_col), src ? src : "");
	}
	btf__free(btf);
	free(jl);
	free(li);
	return 0;
}
