export { OciLayout, type LayoutMode, type LayoutRef } from './oci-layout.js';
export {
  OciLayoutTarget,
  openOciLayout,
  parseLayoutRef,
  parseLayoutSpec,
  formatRefSuffix,
  type OciLayoutTargetOptions,
  type OpenOciLayoutOptions,
} from './layout-target.js';
export { validateRefName, parseIndexFile, writeFileAtomic } from './index-file.js';
