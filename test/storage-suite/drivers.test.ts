// The encryption decorator over each driver runs the same contract suite as the drivers
// themselves (filesystem.test.ts, s3.test.ts). Adding a stack is one line.
import { encryptedFactory, filesystemFactory, s3Factory } from '../helpers/stores.js';
import { defineStorageSuite } from './suite.js';

defineStorageSuite(encryptedFactory(filesystemFactory()));
defineStorageSuite(encryptedFactory(s3Factory()));
