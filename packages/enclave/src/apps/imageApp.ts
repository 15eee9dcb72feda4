/**
 * The app this enclave image serves. Only the worker entry (runtime/workerMain.ts) imports it;
 * the keyed enclave entry (main.ts) never does, and the image builder refuses a build where it would
 * (docs/decisions/1090). The default image (and every run from sources) serves the
 * first-party `firn-ml` app; `firn app build` replaces this module, in the bundle only, with the
 * developer's app (packages/node/src/enclaveImage.ts, `IMAGE_APP_MODULE`), so each image serves
 * exactly one app and its measurement is that app's identity.
 */
export { default } from './firn-ml/index.ts';
