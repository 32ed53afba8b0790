// Every driver runs the one contract suite. Adding a driver (or a decorator stack) is one line.
import { encryptedFactory, filesystemFactory, s3Factory } from '../helpers/stores.js';
import { defineStorageSuite } from './suite.js';

defineStorageSuite(filesystemFactory());
defineStorageSuite(s3Factory());
defineStorageSuite(encryptedFactory(filesystemFactory()));
defineStorageSuite(encryptedFactory(s3Factory()));
