// The decorators over the drivers run the same contract suite as the drivers themselves
// (filesystem.test.ts, s3.test.ts). Adding a stack is one line.
import { encryptedFactory, filesystemFactory, meteredFactory, s3Factory } from '../helpers/stores.js';
import { defineStorageSuite } from './suite.js';

defineStorageSuite(encryptedFactory(filesystemFactory()));
defineStorageSuite(encryptedFactory(s3Factory()));
defineStorageSuite(meteredFactory(encryptedFactory(filesystemFactory())));
