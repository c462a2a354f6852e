// SPDX-License-Identifier: GPL-2.0
/*
 * execsnoop: every execve/execveat, with its arguments and result.
 *
 * sys_enter reads the path and argv into a per-thread staging record (the exec has not
 * replaced the image yet, so a failed exec still has its arguments). A successful exec is sent
 * from sched_process_exec, which names the calling thread (old_pid): when a thread other than
 * the leader execs, the kernel gives it the leader's id, so a lookup by the current id at
 * sys_exit would find nothing. A failed exec is sent from sys_exit (its thread id is
 * unchanged). With -d MS the record is parked per process instead and sent from
 * sched_process_exit, only if the process lived at least MS.
 *
 * Nothing is dropped without a count: a full in-flight table, a full live table and a full ring
 * buffer each have their own slot in `losses`.
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
};

/* Dummy instance so the skeleton generates the Rust type of the header. */
struct exec_event _exec_event = {};

static const struct exec_record empty_record = {};

/*
 * Execs in flight, by thread. A plain hash, not an LRU one: an LRU map evicts entries under
 * pressure without a trace, while a full plain map fails the update, which is counted. Every
 * entry is removed at sched_process_exec or sys_exit, so none outlives its exec.
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

static __always_inline int enter_exec(const char *filename, const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct exec_record *r;
	struct task_struct *task;
	const char *argp;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	int i, ret;

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

	ret = bpf_probe_read_user_str(r->args, ARG_MAX_READ, filename);
	if (ret <= 0)
		return 0;
	if (ret == ARG_MAX_READ)
		r->e.flags |= EXEC_ARGS_TRUNCATED;
	r->e.args_size = ret;
	r->e.args_count = 1;

	for (i = 1; i < TOTAL_MAX_ARGS; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			return 0;
		if (i >= max_args || r->e.args_size > LAST_ARG_OFFSET) {
			r->e.flags |= EXEC_ARGS_TRUNCATED;
			return 0;
		}
		ret = bpf_probe_read_user_str(&r->args[r->e.args_size], ARG_MAX_READ, argp);
		if (ret <= 0)
			return 0;
		if (ret == ARG_MAX_READ)
			r->e.flags |= EXEC_ARGS_TRUNCATED;
		r->e.args_size += ret;
		r->e.args_count++;
	}
	/* TOTAL_MAX_ARGS read: is there more? */
	if (!bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) && argp)
		r->e.flags |= EXEC_ARGS_TRUNCATED;
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
		r->e.retval = ret;
		r->e.ts = bpf_ktime_get_ns();
		bpf_get_current_comm(&r->e.comm, sizeof(r->e.comm));
		send_record(ctx, r);
	}
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

/* A successful exec, staged by the thread that called it (old_pid). */
static __always_inline struct exec_record *exec_done(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_record *r = bpf_map_lookup_elem(&execs, &old_tid);
	struct task_struct *task;

	if (!r)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	r->e.pid = bpf_get_current_pid_tgid() >> 32;
	r->e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->e.retval = 0;
	r->e.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(&r->e.comm, sizeof(r->e.comm));
	return r;
}

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_record *r = exec_done(ctx);

	if (!r)
		return 0;
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

	if (!r)
		return 0;
	pid = r->e.pid;
	if (bpf_map_update_elem(&live, &pid, r, BPF_ANY))
		count_loss(LOSS_LIVE_FULL);
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
