package dev.spate.tests.seeds.s000.commitsync;

// Seed 000_0cefd7d9b9e13ee0.txt, "同步提交代码示例" (the consumer with commitSync), as written, with
// the seed's class name (CustomComsumer). Changes: the bootstrap address and the topic come from
// args[0] and args[1] (the seed has "hadoop102:9092" and "first"); poll(100) is
// poll(Duration.ofMillis(100)) because kafka-clients 4.0 removed poll(long); the endless loop
// ends when the checks ask (see Stop) and the consumer is then closed.
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import dev.spate.tests.seeds.Stop;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;

/**
 * @author liubo
 */
public class CustomComsumer {

    public static void main(String[] args) {

        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);//Kafka集群
        props.put("group.id", "test");//消费者组，只要group.id相同，就属于同一个消费者组
        props.put("enable.auto.commit", "false");//关闭自动提交offset
        props.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");

        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(Arrays.asList(args[1]));//消费者订阅主题

        while (!Stop.requested()) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));//消费者拉取数据
            for (ConsumerRecord<String, String> record : records) {
                System.out.printf("offset = %d, key = %s, value = %s%n", record.offset(), record.key(), record.value());
            }
            consumer.commitSync();//同步提交，当前线程会阻塞知道offset提交成功
        }
        consumer.close();
    }
}
