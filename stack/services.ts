/**
 * The five parts of the local stack, in start-up order: the Temporal dev server, Kafka,
 * MariaDB, the S3 gateway and kinesalite. stack/service.ts says what a part does; each lives in
 * its own module.
 */
import { kafka } from './kafka-broker';
import { kinesisService } from './kinesis-server';
import { mysqlService } from './mysql-server';
import { s3Service } from './s3-server';
import type { Service } from './service';
import { temporal } from './temporal-server';

export const SERVICES: Service[] = [temporal, kafka, mysqlService, s3Service, kinesisService];
