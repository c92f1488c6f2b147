export {
  createScheduler,
  POLL_JOB,
  type PollHandler,
  type PollJobData,
  type PollJobInfo,
  type Scheduler,
  type SchedulerOptions,
} from './scheduler.js';
export { createMongoJobBackend, MONGO_JOBS_COLLECTION } from './mongo.js';
