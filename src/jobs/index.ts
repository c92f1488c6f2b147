export {
  createScheduler,
  POLL_JOB,
  type PollHandler,
  type PollJobData,
  type PollJobInfo,
  type Scheduler,
  type SchedulerOptions,
} from './scheduler.js';
