import pino from 'pino';

/** A logger for tests: silent unless HOTLINE_TEST_LOG is set. */
export const quietLogger = pino({ level: process.env.HOTLINE_TEST_LOG ? 'debug' : 'silent' });
