// SPDX-License-Identifier: GPL-2.0
/*
 * execsnoop: every execve/execveat, with its arguments and result.
 *
 * A successful exec is read at sched_process_exec, after the kernel has copied the arguments
 * into the new program's own argument area (mm->arg_start..arg_end): that memory is resident,
 * so one read takes every argument, even those a program passed as string literals it never
 * touched (a page of its .rodata not yet faulted in, which a read at sys_enter cannot fault).
 * The path is the tracepoint's filename (kernel memory). The tracepoint names the calling
 * thread (old_pid): when a thread other than the leader execs, the kernel gives it the
 * leader's id. With -d MS the record is parked per process instead and sent from
 * sched_process_exit, only if the process lived at least MS.
 *
 * A failed exec (-x) is staged at sys_enter (the arguments read from the caller's memory, the
 * exec has not replaced anything yet) and sent from sys_exit, where a read that failed at entry
 * is tried again: by then the kernel has touched those pages while copying them.
 *
 * Nothing is dropped without a count: a full in-flight table, a full live table and a full ring
 * buffer each have their own slot in `losses`, and so does an exec whose arguments could not be
 * read (its row says so).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "execsnoop.h"
#include "common.bpf.h"

const volatile bool ignore_failed = true;
const volatile bool filter_uid = false;
const volatile __u32 targ_uid = 0;
const volatile int max_args = DEFAULT_MAX_ARGS;
const volatile __u64 min_duration_ns = 0;

struct exec_record {
	struct exec_event e;
	char args[ARGS_BUF];
	/* -x: the caller's path and argv, for the retry at sys_exit (never sent). */
	const char *filename;
	const char *const *argv;
};

/* Dummy instance so the skeleton generates the Rust type of the header. */
struct exec_event _exec_event = {};

static const struct exec_record empty_record = {};

/*
 * Execs in flight, by thread: where a record is built (never per-CPU scratch, which another
 * program preempting this one on the same CPU could overwrite). A plain hash, not an LRU one: an
 * LRU map evicts entries under pressure without a trace, while a full plain map fails the
 * update, which is counted. Every entry is removed at sched_process_exec or sys_exit, so none
 * outlives its exec.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct exec_record);
} execs SEC(".maps");

/*
 * -d mode: processes that exec'd and still live, by pid. Sized from user space (--max-procs).
 * Only the -d programs use it, so without -d it is never referenced. Not preallocated: memory
 * follows the processes actually alive (4 KiB each). Before 6.1 a tracing program must not use
 * a non-preallocated hash (a kernel WARNING, refused on PREEMPT_RT): there user space clears
 * the flag before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct exec_record);
} live SEC(".maps");

/*
 * Reads the path and argv[1..] from the caller's memory into r (path first, each
 * NUL-terminated). Returns false when a read failed (a page not resident, or a bad pointer);
 * what was read up to there stays.
 */
static __always_inline bool read_caller_args(struct exec_record *r)
{
	const char *argp;
	int i, ret;

	r->e.args_size = 0;
	r->e.args_count = 0;
	ret = bpf_probe_read_user_str(r->args, ARG_MAX_READ, r->filename);
	if (ret <= 0)
		return false;
	if (ret == ARG_MAX_READ)
		r->e.flags |= EXEC_ARGS_TRUNCATED;
	r->e.args_size = ret;
	r->e.args_count = 1;

	for (i = 1; i < TOTAL_MAX_ARGS; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &r->argv[i]))
			return false;
		if (!argp)
			return true;
		if (i >= max_args || r->e.args_size > LAST_ARG_OFFSET) {
			r->e.flags |= EXEC_ARGS_TRUNCATED;
			return true;
		}
		ret = bpf_probe_read_user_str(&r->args[r->e.args_size], ARG_MAX_READ, argp);
		if (ret <= 0)
			return false;
		if (ret == ARG_MAX_READ)
			r->e.flags |= EXEC_ARGS_TRUNCATED;
		r->e.args_size += ret;
		r->e.args_count++;
	}
	/* TOTAL_MAX_ARGS read: is there more? */
	if (!bpf_probe_read_user(&argp, sizeof(argp), &r->argv[i]) && argp)
		r->e.flags |= EXEC_ARGS_TRUNCATED;
	return true;
}

/* -x only (autoload off otherwise): stage the exec, in case it fails. */
static __always_inline int enter_exec(const char *filename, const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct exec_record *r;
	struct task_struct *task;
	__u32 uid = (__u32)bpf_get_current_uid_gid();

	if (filter_uid && uid != targ_uid)
		return 0;
	if (cgroup_filtered_out())
		return 0;

	if (bpf_map_update_elem(&execs, &tid, &empty_record, BPF_ANY)) {
		count_loss(LOSS_INFLIGHT_FULL);
		return 0;
	}
	r = bpf_map_lookup_elem(&execs, &tid);
	if (!r)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	r->e.pid = id >> 32;
	r->e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->e.uid = uid;
	r->e.cgroup_id = task_cgroup_id(task);
	r->filename = filename;
	r->argv = argv;
	if (!read_caller_args(r))
		r->e.flags |= EXEC_ARGS_UNREADABLE; /* tried again at sys_exit */
	return 0;
}

static __always_inline void send_record(void *ctx, struct exec_record *r)
{
	__u64 len = r->e.args_size;

	if (len > ARGS_BUF)
		len = ARGS_BUF;
	output_event(ctx, r, sizeof(r->e) + len);
}

/* A failed exec: its thread still has the id it entered with. */
static __always_inline int exit_exec(void *ctx, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_record *r;

	r = bpf_map_lookup_elem(&execs, &tid);
	if (!r)
		return 0; /* sent from sched_process_exec, or not staged (counted) */
	if (ret < 0 && !ignore_failed) {
		if (r->e.flags & EXEC_ARGS_UNREADABLE) {
			r->e.flags = 0;
			if (!read_caller_args(r)) {
				r->e.flags |= EXEC_ARGS_UNREADABLE;
				count_loss(LOSS_ARGS_UNREADABLE);
			}
		}
		r->e.retval = ret;
		r->e.ts = bpf_ktime_get_ns();
		bpf_get_current_comm(&r->e.comm, sizeof(r->e.comm));
		send_record(ctx, r);
	}
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

/*
 * fexecve (execveat with AT_EMPTY_PATH) and an exec of /dev/fd/N: the tracepoint's filename is
 * only "/dev/fd/N", so the program's path is taken from its file, as /proc/PID/exe shows it:
 * the names of its dentries, leaf first, each in a fixed slot of EXE_NAME bytes (fixed offsets
 * keep the verifier's work small), crossing mounts up to the process's root. User space joins
 * them. A deeper path sets EXEC_PATH_HEAD_CUT, a longer name EXEC_ARGS_TRUNCATED.
 */
static __always_inline void read_exe_path(struct exec_record *r, struct task_struct *task)
{
	__u32 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct file *file = BPF_CORE_READ(task, mm, exe_file);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct dentry *root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	struct mount *mnt, *mnt_parent;
	struct dentry *parent;
	__u32 slot = 0, i;
	long n;

#pragma unroll
	for (i = 0; i < EXE_DEPTH + EXE_MOUNTS; i++) {
		if (!dentry || (dentry == root_dentry && vfsmnt == root_mnt))
			return;
		mnt = (void *)vfsmnt - mnt_off;
		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt)
				return;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			vfsmnt = (void *)mnt_parent + mnt_off;
			continue;
		}
		parent = BPF_CORE_READ(dentry, d_parent);
		if (slot >= EXE_DEPTH) {
			r->e.flags |= EXEC_PATH_HEAD_CUT;
			return;
		}
		n = bpf_probe_read_kernel_str(&r->args[(slot & (EXE_DEPTH - 1)) * EXE_NAME], EXE_NAME,
					      BPF_CORE_READ(dentry, d_name.name));
		if (n == EXE_NAME)
			r->e.flags |= EXEC_ARGS_TRUNCATED;
		slot++;
		if (parent == dentry)
			return;
		dentry = parent;
	}
	r->e.flags |= EXEC_PATH_HEAD_CUT;
}

/* Whether the kernel's filename is "/dev/fd/..." (the exec named its program by a descriptor). */
static __always_inline bool by_descriptor(const char *filename)
{
	char head[8];

	if (bpf_probe_read_kernel(head, sizeof(head), filename))
		return false;
	return head[0] == '/' && head[1] == 'd' && head[2] == 'e' && head[3] == 'v' &&
	       head[4] == '/' && head[5] == 'f' && head[6] == 'd' && head[7] == '/';
}

/*
 * The path, as the tracepoint gives it (kernel memory), then the new program's whole argument
 * area (argv[0], argv[1], ... each NUL-terminated, as the kernel copied them) in one read.
 * EXEC_ARGV0 tells user space that argv[0] follows the path.
 */
static __always_inline void read_new_args(struct trace_event_raw_sched_process_exec *ctx,
					  struct exec_record *r, struct task_struct *task)
{
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_filename) & 0xffff;
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u32 off;
	__u64 len;
	long ret;

	if (by_descriptor((void *)ctx + loc)) {
		read_exe_path(r, task);
		r->e.flags |= EXEC_PATH_SLOTS;
		ret = ARG_MAX_READ; /* the slots fill the first ARG_MAX_READ bytes */
	} else {
		ret = bpf_probe_read_kernel_str(r->args, ARG_MAX_READ, (void *)ctx + loc);
		if (ret <= 0) {
			r->e.flags |= EXEC_ARGS_UNREADABLE;
			count_loss(LOSS_ARGS_UNREADABLE);
			return;
		}
		if (ret == ARG_MAX_READ)
			r->e.flags |= EXEC_ARGS_TRUNCATED;
	}
	off = ret;
	r->e.args_size = off;
	r->e.args_count = 1;
	if (end <= start)
		return; /* no arguments at all (argv empty): nothing to read */
	len = end - start;
	if (len > AREA_MAX_READ)
		r->e.flags |= EXEC_ARGS_TRUNCATED;
	/*
	 * Bounds the verifier can follow, checked right before the read: off < 2 * ARG_MAX_READ
	 * (it is at most ARG_MAX_READ), len <= AREA_MAX_READ, so the read ends inside args.
	 */
	barrier_var(off);
	off &= 2 * ARG_MAX_READ - 1;
	barrier_var(len);
	if (len > AREA_MAX_READ)
		len = AREA_MAX_READ;
	if (bpf_probe_read_user(&r->args[off], len, (const void *)start)) {
		r->e.flags |= EXEC_ARGS_UNREADABLE;
		count_loss(LOSS_ARGS_UNREADABLE);
		return;
	}
	r->e.flags |= EXEC_ARGV0;
	r->e.args_size = off + len;
}

/*
 * A successful exec: the record is built in the calling thread's (old_pid's) entry of `execs`:
 * a new one, or with -x the one sys_enter staged (its arguments are read again, whole).
 */
static __always_inline struct exec_record *exec_done(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct task_struct *task;
	struct exec_record *r;

	if (filter_uid && uid != targ_uid)
		return 0;
	if (cgroup_filtered_out())
		return 0;
	if (ignore_failed && bpf_map_update_elem(&execs, &old_tid, &empty_record, BPF_ANY)) {
		count_loss(LOSS_INFLIGHT_FULL);
		return 0;
	}
	/* With -x, an exec sys_enter could not stage was counted there already. */
	r = bpf_map_lookup_elem(&execs, &old_tid);
	if (!r)
		return 0;
	r->e.flags = 0;
	task = (struct task_struct *)bpf_get_current_task();
	r->e.pid = id >> 32;
	r->e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->e.uid = uid;
	r->e.cgroup_id = task_cgroup_id(task);
	r->e.retval = 0;
	r->e.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(&r->e.comm, sizeof(r->e.comm));
	read_new_args(ctx, r, task);
	return r;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_record *r = exec_done(ctx);

	if (r)
		send_record(ctx, r);
	bpf_map_delete_elem(&execs, &old_tid);
	return 0;
}

/* -d mode only (autoload off otherwise): park the record until the process exits. */
SEC("tracepoint/sched/sched_process_exec")
int process_exec_live(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_record *r = exec_done(ctx);
	__u32 pid;

	if (r) {
		pid = r->e.pid;
		if (bpf_map_update_elem(&live, &pid, r, BPF_ANY))
			count_loss(LOSS_LIVE_FULL);
	}
	bpf_map_delete_elem(&execs, &old_tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx, ctx->ret);
}

/* -d mode only (autoload off otherwise). */
SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct task_struct *task;
	struct exec_record *r;
	__u64 now, start;

	r = bpf_map_lookup_elem(&live, &pid);
	if (!r)
		return 0;
	/* The process ends with its last thread, which need not be the main one. */
	task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	/*
	 * The process's age, from its start (fork), as ps shows it: a process that execs again
	 * (a shell's `exec prog`) keeps its age, while the row shows its last program.
	 */
	now = bpf_ktime_get_ns();
	start = BPF_CORE_READ(task, group_leader, start_time);
	if (now - start >= min_duration_ns) {
		r->e.duration_ns = now - start;
		r->e.ts = now;
		r->e.exit_code = BPF_CORE_READ(task, exit_code);
		r->e.flags |= EXEC_EXITED;
		send_record(ctx, r);
	}
	bpf_map_delete_elem(&live, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
