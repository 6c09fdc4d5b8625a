/** Every workflow the pinflow worker runs (the worker bundles this file). */
export { doctorWorkflow } from './doctor';
export { emulationWorkflow } from './emulation';
export { landingWorkflow } from './landing';
export { batchCleaningWorkflow } from './cleaning';
export { dailyPipelineWorkflow } from './daily';
export { streamingWorkflow } from './streaming';
