// Package jobs is cmon's job engine: CmonJobInstance jobs stored in the
// database, which is the queue, run by workers on one or more controllers
// sharing it, with their messages (the job log), kills, timeouts, cron
// recurrence, recovery after a controller dies, and retention.
//
// # Life of a job
//
// Registry.Draft resolves the command (a Command from the Registry, by name or
// alias), reads job_data's common fields (a JSON object: timeout_sec, and the
// cluster ids a command that declares ClusterInJobData reads) and settles the
// job's cluster. Draft.Authorize checks the command's declared Access for a
// user (privileges on the cluster or on "/", superuser-only fields): every
// way a job is made to run asks it. CreateDraft then checks job_data with the
// command's Validate and the schedule, and stores the job DEFINED, or SCHEDULED when it has a future
// start time or a recurrence. A worker claims the oldest DEFINED job in a
// transaction (SELECT ... FOR UPDATE SKIP LOCKED on MySQL/MariaDB; SQLite has
// one writer) and marks it DEQUEUED, then RUNNING, then runs the command's
// Handler with a context that ends on kill, timeout (job_data.timeout_sec, at
// most Config.MaxRunTime) or controller stop. The handler's return decides the
// end: nil FINISHED, an error FAILED (its message the status_text), a kill
// ABORTED, a timeout FAILED "Job timed out after N s.". A panic fails the job.
//
// Jobs created through a Service wake one of its idle workers at once; jobs
// created through another controller are found by the PollInterval poll.
//
// # Exclusive commands
//
// A Command marked Exclusive changes its cluster: the claim skips an exclusive
// job while another exclusive job of the same cluster is DEQUEUED or RUNNING.
// The claim sets jobs.exclusive_lock to the cluster id, under a unique index,
// so two controllers racing for one cluster cannot both win; the lock is
// cleared in the same update that ends the job.
//
// # Several controllers
//
// Each controller has its own ControllerID and, per run, an instance id. It
// heartbeats a row in job_controllers; a DEQUEUED or RUNNING job whose run is
// not this controller's current one and has no fresh heartbeat (older than
// StaleAfter), or that belongs to a previous run of this controller id, is
// FAILED "The controller stopped while the job was running." at Start and at
// every heartbeat by any controller. A kill requested through another
// controller sets jobs.kill_requested; the controller running the job notices
// within PollInterval.
//
// # Scheduling
//
// A SCHEDULED job has next_fire_at. A one-off job becomes DEFINED then (and
// runs as itself); a recurring template (cron, evaluated in its time zone,
// UTC by default) creates a DEFINED child with parent_job_id set, or skips
// the firing with a JOB_WARNING on the template while its previous child has
// not ended. The firing advances next_fire_at by a conditional update in its
// transaction, so one controller makes it. Time comes from Config.Clock.
//
// # Deleting
//
// Only jobs that no worker may be holding can be deleted: ended jobs
// (FINISHED, FAILED, ABORTED) and jobs waiting for a time or a user
// (SCHEDULED, PAUSED; deleting a recurring template ends its schedule, its
// children stay). Kill a DEFINED or running job first. Retention deletes ended
// jobs only.
package jobs
