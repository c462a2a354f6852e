// SPDX-License-Identifier: GPL-2.0
/*
 * unlinksnoop: every unlink/unlinkat/rmdir, with the full path, the result and the latency.
 *
 * Three sets of programs, of which user space loads one (src/load/attach.rs): fentry/fexit on
 * do_unlinkat and do_rmdir, else kprobe/kretprobe on the same, else the syscall tracepoints.
 * Entry builds the whole record (the path resolved against the caller's working directory or
 * directory fd, while both still exist) in the calling thread's entry of the `inflight` map;
 * return adds the result and sends it. The path is resolved here, not in user space, so it is right even when the process is gone
 * by the time the record is read.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "unlinksnoop.h"
#include "common.bpf.h"

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200

const volatile __u32 targ_pid = 0;
const volatile bool filter_uid = false;
const volatile __u32 targ_uid = 0;
const volatile char targ_comm[TASK_COMM_LEN] = {};
const volatile __u32 targ_comm_len = 0;
const volatile bool failed_only = false;
/*
 * Whether do_unlinkat / do_rmdir take a `struct filename *` (do_rmdir since 5.11) or the user's
 * `const char *`. User space reads it from the kernel's BTF before load.
 */
const volatile bool unlinkat_takes_filename = true;
const volatile bool rmdir_takes_filename = true;

/* Dummy instance so the skeleton generates the Rust type of the header. */
struct unlink_event _unlink_event = {};

/*
 * A removal in flight: the record entry builds and return completes and sends (`e` and the
 * first path_len bytes of `path`, which follow it directly).
 *
 * It lives in the calling thread's own entry of the `inflight` hash map and is built there in
 * place, never in per-CPU scratch: a tracing program runs with migration disabled, not
 * preemption, so another removal on the same CPU could run in the middle of this one and
 * overwrite a shared scratch buffer. A thread's entry is touched only by that thread (entry,
 * return, its own exit), and a thread is in at most one removal at a time.
 */
struct inflight {
	struct unlink_event e;
	/*
	 * The path, and then slack: every copy at a masked offset below PATH_BUF stays provably in
	 * bounds. The walk up the tree builds the base directory backwards in the upper part (from
	 * BASE + PATH_BUF down, a name at a time), then copies it to the front.
	 */
	char path[2 * PATH_BUF + NAME_BUF];
	/*
	 * The walk's position. Kept in the map rather than in registers: loaded back, every
	 * iteration looks the same to the verifier, which can then prune instead of following every
	 * combination of mount crossings and name lengths (that blows its 1M-instruction budget).
	 */
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	__u32 off;
};

/* Where the base directory is built (see struct inflight). */
#define BASE PATH_BUF

/* What a new entry starts from (a map update copies a whole value). */
static const struct inflight empty_inflight = {};

/*
 * Removals in flight, by thread. A plain hash: when it is full (--max-inflight), the removal
 * is counted as lost (an LRU would evict another thread's removal without a trace). An entry
 * whose return never comes is counted and freed when its thread exits (sched_process_exit).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/*
 * An offset into the path the verifier can bound. The barrier keeps clang from dropping the mask
 * when it can prove the bound itself (the verifier cannot always follow it).
 */
static __always_inline __u32 in_path(__u32 off)
{
	barrier_var(off);
	return off & (PATH_BUF - 1);
}

/* -n NAME: the command name contains NAME (as execsnoop -n). */
static __always_inline bool comm_matches(const char *comm)
{
	__u32 i, j;

	if (!targ_comm_len)
		return true;
#pragma unroll
	for (i = 0; i < TASK_COMM_LEN; i++) {
		if (i + targ_comm_len > TASK_COMM_LEN - 1)
			break;
#pragma unroll
		for (j = 0; j < TASK_COMM_LEN; j++) {
			if (j >= targ_comm_len)
				return true;
			if (comm[(i + j) & (TASK_COMM_LEN - 1)] != targ_comm[j])
				break;
		}
	}
	return false;
}

/* The directory a relative name starts from: the working directory, or the file behind dfd. */
static __always_inline int base_dir(struct task_struct *task, int dfd, struct path *base)
{
	struct file **fds, *file = NULL;
	struct fdtable *fdt;

	if (dfd == AT_FDCWD) {
		BPF_CORE_READ_INTO(base, task, fs, pwd);
		return base->dentry ? 0 : -1;
	}
	if (dfd < 0)
		return -1;
	fdt = BPF_CORE_READ(task, files, fdt);
	if ((__u32)dfd >= BPF_CORE_READ(fdt, max_fds))
		return -1;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[dfd]) || !file)
		return -1;
	BPF_CORE_READ_INTO(base, file, f_path);
	return base->dentry ? 0 : -1;
}

/* One step up from s->dentry; returns true when the walk is over. */
static __noinline bool walk_step(struct inflight *s, struct path *root, __u32 mnt_off)
{
	struct dentry *dentry = s->dentry, *parent;
	struct vfsmount *vfsmnt = s->vfsmnt;
	struct mount *mnt = (void *)vfsmnt - mnt_off, *mnt_parent;
	const unsigned char *name;
	__u32 off = s->off, len;

	if (dentry == root->dentry && vfsmnt == root->mnt)
		return true;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt)
			return true;
		s->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		s->vfsmnt = (void *)mnt_parent + mnt_off;
		return false;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry)
		return true;
	len = BPF_CORE_READ(dentry, d_name.len) & (NAME_BUF - 1);
	name = BPF_CORE_READ(dentry, d_name.name);
	/* Keep room for one more full name so that every write stays provably in bounds. */
	if (off < len + 1 + NAME_BUF) {
		s->e.flags |= PATH_TRUNCATED_HEAD;
		return true;
	}
	off -= len;
	barrier_var(len); /* masked again below, where the verifier needs to see it */
	bpf_probe_read_kernel(&s->path[BASE + in_path(off)], len & (NAME_BUF - 1), name);
	off--;
	s->path[BASE + in_path(off)] = '/';
	s->off = off;
	s->dentry = parent;
	return false;
}

/*
 * Writes the absolute path of `base` and a trailing '/' into s->path; returns its length. Walks
 * up dentry by dentry, crossing mounts, until the process's root (a chrooted or containerised
 * process sees its own paths) or the top of the mount tree, writing each name in front of the
 * previous one.
 */
static __always_inline __u32 write_base(struct inflight *s, struct path *base, struct path *root)
{
	__u32 mnt_off = bpf_core_field_offset(struct mount, mnt);
	__u32 len, i;

	s->dentry = base->dentry;
	s->vfsmnt = base->mnt;
	s->off = PATH_BUF;
	/*
	 * Unrolled: no loop for the verifier to judge. Kernels before 6.3 reject some loop shapes
	 * clang produces here ("back-edge from insn") even though they are bounded.
	 */
#pragma unroll
	for (i = 0; i < MAX_DEPTH; i++) {
		if (walk_step(s, root, mnt_off))
			break;
	}
	if (i == MAX_DEPTH)
		s->e.flags |= PATH_TRUNCATED_HEAD;

	len = (PATH_BUF - s->off) & (PATH_BUF - 1);
	bpf_probe_read_kernel(s->path, len, &s->path[BASE + in_path(s->off)]);
	s->path[in_path(len)] = '/';
	return len + 1;
}

static __always_inline long read_str(void *dst, __u32 size, const void *src, bool user)
{
	return user ? bpf_probe_read_user_str(dst, size, src)
		    : bpf_probe_read_kernel_str(dst, size, src);
}

static __always_inline void build_path(struct inflight *s, int dfd, const char *name, bool user)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct path base = {}, root = {};
	__u32 off = 0;
	char first = 0;
	long n;

	if (user)
		bpf_probe_read_user(&first, 1, name);
	else
		bpf_probe_read_kernel(&first, 1, name);
	if (first != '/') {
		if (base_dir(task, dfd, &base) == 0) {
			BPF_CORE_READ_INTO(&root, task, fs, root);
			off = write_base(s, &base, &root);
		} else {
			s->e.flags |= PATH_UNRESOLVED;
		}
	}
	s->e.name_off = off;
	n = read_str(&s->path[in_path(off)], PATH_BUF, name, user);
	if (n <= 0) {
		s->e.path_len = 0; /* unreadable name (the call fails with EFAULT) */
		return;
	}
	off += n;
	if (off > PATH_BUF) {
		off = PATH_BUF;
		s->e.flags |= PATH_TRUNCATED_TAIL;
	}
	s->e.path_len = off;
}

static __always_inline int on_entry(int dfd, const char *name, bool user, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	char comm[TASK_COMM_LEN];
	struct inflight *s;

	if (targ_pid && pid != targ_pid)
		return 0;
	if (filter_uid && uid != targ_uid)
		return 0;
	if (cgroup_filtered_out())
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (!comm_matches(comm))
		return 0;

	s = bpf_map_lookup_elem(&inflight, &tid);
	if (s) {
		/* This thread's previous removal never returned (a missed kretprobe): it is lost. */
		count_loss(LOSS_NO_RETURN);
	} else {
		if (bpf_map_update_elem(&inflight, &tid, &empty_inflight, BPF_NOEXIST)) {
			count_loss(LOSS_INFLIGHT_FULL);
			return 0;
		}
		s = bpf_map_lookup_elem(&inflight, &tid);
		if (!s) {
			count_loss(LOSS_INFLIGHT_FULL); /* cannot happen: only this thread deletes it */
			return 0;
		}
	}
	__builtin_memcpy(s->e.comm, comm, sizeof(comm));
	s->e.ts = bpf_ktime_get_ns();
	s->e.lat_ns = 0;
	s->e.pid = pid;
	s->e.tid = tid;
	s->e.uid = uid;
	s->e.cgroup_id = current_cgroup_id();
	s->e.ret = 0;
	s->e.op = op;
	s->e.flags = 0;
	build_path(s, dfd, name, user);
	return 0;
}

static __always_inline int on_return(void *ctx, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *r;
	__u64 now, len;

	r = bpf_map_lookup_elem(&inflight, &tid);
	if (!r)
		return 0;
	if (!(failed_only && ret >= 0)) {
		now = bpf_ktime_get_ns();
		r->e.lat_ns = now - r->e.ts;
		r->e.ts = now;
		r->e.ret = ret;
		len = r->e.path_len;
		if (len > PATH_BUF)
			len = PATH_BUF;
		output_event(ctx, r, sizeof(r->e) + len);
	}
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/*
 * Loaded with every method. A thread cannot exit inside a removal, so an entry still here was
 * never returned from (a kretprobe that missed): count it and free its slot, so that a table
 * never fills up with dead threads' removals.
 */
SEC("tracepoint/sched/sched_process_exit")
int thread_exit(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&inflight, &tid))
		return 0;
	count_loss(LOSS_NO_RETURN);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/* fentry / kprobe: the name is in a struct filename (kernel memory), or on old kernels the user's. */
static __always_inline int on_entry_fn(int dfd, void *name, bool takes_filename, __u8 op)
{
	const char *str = name;

	if (takes_filename)
		str = BPF_CORE_READ((struct filename *)name, name);
	return on_entry(dfd, str, !takes_filename, op);
}

/* Method "fentry". */

SEC("fentry/do_unlinkat")
int BPF_PROG(fentry_unlinkat, int dfd, struct filename *name)
{
	return on_entry_fn(dfd, name, unlinkat_takes_filename, OP_UNLINK);
}

SEC("fexit/do_unlinkat")
int BPF_PROG(fexit_unlinkat, int dfd, struct filename *name, int ret)
{
	return on_return(ctx, ret);
}

SEC("fentry/do_rmdir")
int BPF_PROG(fentry_rmdir, int dfd, struct filename *name)
{
	return on_entry_fn(dfd, name, rmdir_takes_filename, OP_RMDIR);
}

SEC("fexit/do_rmdir")
int BPF_PROG(fexit_rmdir, int dfd, struct filename *name, int ret)
{
	return on_return(ctx, ret);
}

/* Method "kprobe". */

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(kprobe_unlinkat, int dfd, void *name)
{
	return on_entry_fn(dfd, name, unlinkat_takes_filename, OP_UNLINK);
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(kretprobe_unlinkat, int ret)
{
	return on_return(ctx, ret);
}

SEC("kprobe/do_rmdir")
int BPF_KPROBE(kprobe_rmdir, int dfd, void *name)
{
	return on_entry_fn(dfd, name, rmdir_takes_filename, OP_RMDIR);
}

SEC("kretprobe/do_rmdir")
int BPF_KRETPROBE(kretprobe_rmdir, int ret)
{
	return on_return(ctx, ret);
}

/* Method "tracepoint". */

SEC("tracepoint/syscalls/sys_enter_unlink")
int tp_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	return on_entry(AT_FDCWD, (const char *)ctx->args[0], true, OP_UNLINK);
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int tp_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	__u8 op = ctx->args[2] & AT_REMOVEDIR ? OP_RMDIR : OP_UNLINK;

	return on_entry((int)ctx->args[0], (const char *)ctx->args[1], true, op);
}

SEC("tracepoint/syscalls/sys_enter_rmdir")
int tp_enter_rmdir(struct trace_event_raw_sys_enter *ctx)
{
	return on_entry(AT_FDCWD, (const char *)ctx->args[0], true, OP_RMDIR);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int tp_exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	return on_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int tp_exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	return on_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_rmdir")
int tp_exit_rmdir(struct trace_event_raw_sys_exit *ctx)
{
	return on_return(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
