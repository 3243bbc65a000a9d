export { OciLayout, manifestDescriptor, type LayoutMode, type LayoutRef } from './oci-layout.js';
export {
  OciLayoutTarget,
  openOciLayout,
  parseLayoutRef,
  parseLayoutSpec,
  formatRefSuffix,
  type OciLayoutTargetOptions,
  type OpenOciLayoutOptions,
} from './layout-target.js';
export { IMAGE_LAYOUT_VERSION, validateRefName, parseIndexFile, writeFileAtomic } from './index-file.js';
